"""The ``WS /tts/stream`` protocol: its constants, the ``speak`` message, the frame header, the key check.

The protocol itself is described in the route's docstring and ``docs/streaming.md``.
"""

from __future__ import annotations

import hmac
import struct
import time
from dataclasses import dataclass, field
from typing import Literal

from fastapi import WebSocket
from pydantic import BaseModel, ConfigDict, Field

from f5vi.api.auth import token_matches
from f5vi.api.errors import ApiError
from f5vi.config import Settings
from f5vi.engine.text.lexicon import MAX_REQUEST_ENTRIES
from f5vi.engine.types import SAMPLE_RATE
from f5vi.engine.validation import SPEED_RANGE
from f5vi.jobs.requests import LexiconItem, NfeStep, Seed, TextTypeField

PROTOCOL = "f5vi.tts.v1"
FRAME_MAGIC = b"F5PC"
FRAME_HEADER = struct.Struct("<4sIII")
"""Binary frame header: magic, request seq (1-based per connection), chunk index (0-based), samples."""
CLOSE_SERVICE_RESTART = 1012
"""WebSocket close code: the server is restarting; the client may reconnect."""
SHUTDOWN_MESSAGE = "the server is restarting; reconnect and send the request again"
SHUTDOWN_REPORT_SECONDS = 2.0
MAX_PENDING = 8
"""Requests one connection may have queued behind the running one."""
MAX_FRAME_SAMPLES = SAMPLE_RATE
"""Longer pieces are sent as several binary frames of at most 1 s (48 kB, below common client limits)."""


class SpeakMessage(BaseModel):
    """A ``speak`` message, typed strictly like the HTTP bodies (``"8"`` is not a number)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    type: Literal["speak"] = "speak"
    id: str | None = Field(None, max_length=128, description="Echoed in every frame about this request.")
    text: str = Field(min_length=1)
    voice: str = Field(min_length=1, max_length=256)
    speed: float | None = Field(None, ge=SPEED_RANGE[0], le=SPEED_RANGE[1])
    nfe_step: NfeStep | None = None
    seed: Seed | None = None
    verify: bool | None = None
    text_type: TextTypeField = "auto"
    lexicon: list[LexiconItem] | None = Field(None, max_length=MAX_REQUEST_ENTRIES)


@dataclass
class QueuedRequest:
    seq: int
    message: SpeakMessage
    received: float = field(default_factory=time.monotonic)


async def authorize(websocket: WebSocket, settings: Settings) -> bool:
    """Same key as the HTTP routes: ``Authorization: Bearer <key>``, or (browsers cannot set headers
    on a WebSocket) the subprotocol ``bearer.<key>`` offered next to ``f5vi.tts.v1``."""
    key = settings.api_key.get_secret_value() if settings.api_key is not None else ""
    if not key:
        return True
    if token_matches(websocket.headers.get("authorization"), key):
        return True
    for offered in websocket.scope.get("subprotocols") or []:
        if offered.startswith("bearer.") and hmac.compare_digest(offered[7:].encode(), key.encode()):
            return True
    response = ApiError(
        401,
        "unauthorized",
        "missing or invalid API key: send 'Authorization: Bearer <key>' or the subprotocol 'bearer.<key>'",
        headers={"WWW-Authenticate": 'Bearer realm="f5vi"'},
    ).response()
    try:
        await websocket.send_denial_response(response)
    except RuntimeError:  # the server cannot send an HTTP answer to a WebSocket handshake
        await websocket.close(code=1008, reason="unauthorized")
    return False
