"""The ``WS /tts/stream`` protocol: its constants, the ``speak`` message, the frame header, the key check.

The protocol itself is described in the route's docstring and ``docs/streaming.md``.
"""

from __future__ import annotations

import hmac
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import WebSocket
from pydantic import BaseModel, ConfigDict, Field

from f5vi.api.auth import token_matches
from f5vi.api.errors import ApiError
from f5vi.config import Settings
from f5vi.engine.text.lexicon import MAX_REQUEST_ENTRIES
from f5vi.engine.types import SAMPLE_RATE
from f5vi.engine.validation import SPEED_RANGE
from f5vi.jobs.requests import LexiconItem, NfeStep, Seed, TextTypeField, TTSInput, lexicon_tuple
from f5vi.jobs.streaming import AudioStream

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

    def to_input(self) -> TTSInput:
        return TTSInput(
            text=self.text,
            ref_name=self.voice,
            speed=self.speed,
            nfe_step=self.nfe_step,
            seed=self.seed,
            verify=self.verify,
            text_type=self.text_type,
            lexicon=lexicon_tuple(self.lexicon),
        )


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


# ---------------------------------------------------------------------- the JSON frames of one request
def start_frame(msg: SpeakMessage, seq: int, stream: AudioStream) -> dict[str, Any]:
    return {
        "type": "start",
        "id": msg.id,
        "seq": seq,
        "stream_id": stream.id,
        "voice": stream.voice.id,
        "tagged_voices": [ref.voice_id for _, ref in stream.request.voices],
        "sample_rate": stream.sample_rate,
        "channels": 1,
        "encoding": "pcm_s16le",
    }


def chunk_frame(
    msg: SpeakMessage, seq: int, index: int, count: int, offset: int, words: list[dict[str, Any]]
) -> dict[str, Any]:
    """Announces the binary frame that follows it: ``count`` samples from ``offset``, and the timed
    words that start in them."""
    return {
        "type": "chunk",
        "id": msg.id,
        "seq": seq,
        "index": index,
        "samples": count,
        "bytes": FRAME_HEADER.size + 2 * count,
        "offset_samples": offset,
        "words": words,
    }


def done_frame(
    msg: SpeakMessage,
    seq: int,
    stream: AudioStream,
    chunks: int,
    samples: int,
    first_chunk_seconds: float | None,
    elapsed: float,
) -> dict[str, Any]:
    synthesis = stream.stats.synthesis_seconds
    frame: dict[str, Any] = {
        "type": "done",
        "id": msg.id,
        "seq": seq,
        "chunks": chunks,
        "samples": samples,
        "duration_seconds": round(samples / stream.sample_rate, 3),
        "first_chunk_seconds": None if first_chunk_seconds is None else round(first_chunk_seconds, 3),
        "elapsed_seconds": round(elapsed, 3),
        "rtf": round(synthesis / (samples / stream.sample_rate), 4) if synthesis and samples else None,
    }
    if stream.stats.verification is not None:  # requests with ``verify``
        frame["verification"] = stream.stats.verification
    return frame


def words_before(stream: AudioStream, end_sample: int) -> list[dict[str, Any]]:
    """The stream's timed words that start before ``end_sample`` and were not sent yet."""
    out: list[dict[str, Any]] = []
    while stream.words and stream.words[0].start * stream.sample_rate < end_sample:
        w = stream.words.popleft()
        out.append({"text": w.text, "start": w.start, "end": w.end, "char_start": w.char_start,
                    "char_end": w.char_end})  # fmt: skip
    return out
