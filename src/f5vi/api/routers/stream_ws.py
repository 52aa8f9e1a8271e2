"""``WS /tts/stream``: real-time synthesis over a WebSocket (protocol in ``docs/streaming.md``).

Client -> server: text messages, each one JSON object:

- ``{"type": "speak", "text": ..., "voice": ..., "speed"?, "nfe_step"?, "seed"?, "id"?}`` (``type``
  may be omitted) queues a request; requests of one connection run one after the other. ``[voice_id]``
  tags in the text switch voices as in ``POST /tts`` (``[[`` is a literal ``[``).
- ``{"type": "cancel"}`` stops the running request and drops the queued ones.
- ``{"type": "ping"}`` -> ``{"type": "pong"}``.

Server -> client: JSON text frames ``ready`` (once), then per request ``start``, for each audio frame
(at most 1 s; an engine piece longer than that is split) a ``chunk`` frame immediately followed by
ONE binary frame, then ``done``; or ``error`` (for a bad message or a failed request; the connection
stays open). A binary frame is a 16-byte header
``<4sIII`` = (``b"F5PC"``, request ``seq``, chunk ``index``, sample count) then signed 16-bit
little-endian mono PCM at 24 kHz.

Each request goes through the shared engine queue like a job. Closing the socket cancels what runs.
When the server shuts down, what runs or waits gets an ``error`` frame (``server_shutdown``), then
a ``closing`` frame, and the socket is closed with code 1012 (service restart): reconnect and resend.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio.to_thread
from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from f5vi.api.auth import token_matches
from f5vi.api.errors import ApiError
from f5vi.config import Settings
from f5vi.engine.errors import InvalidTextError, SynthesisCancelled
from f5vi.engine.stream_encoder import to_pcm16
from f5vi.engine.types import SAMPLE_RATE
from f5vi.engine.validation import require_text
from f5vi.errors import F5viError, scrub
from f5vi.jobs.requests import NfeStep, Seed, TTSInput
from f5vi.jobs.streaming import AudioStream, StreamService
from f5vi.metrics import Metrics

logger = logging.getLogger(__name__)
router = APIRouter()

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
    speed: float | None = Field(None, ge=0.3, le=2.0)
    nfe_step: NfeStep | None = None
    seed: Seed | None = None
    verify: bool | None = None


@dataclass
class _Request:
    seq: int
    message: SpeakMessage
    received: float = field(default_factory=time.monotonic)


@router.websocket("/tts/stream", name="tts_stream")
async def tts_stream(websocket: WebSocket) -> None:
    settings: Settings = websocket.app.state.settings
    if not await _authorize(websocket, settings):
        return
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol=PROTOCOL if PROTOCOL in offered else None)
    state = websocket.app.state
    async with state.runtime.connection() as stopping:
        await _Connection(websocket, state.streams, state.metrics, settings, stopping).run()


async def _authorize(websocket: WebSocket, settings: Settings) -> bool:
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


class _Connection:
    def __init__(
        self,
        websocket: WebSocket,
        streams: StreamService,
        metrics: Metrics,
        settings: Settings,
        stopping: asyncio.Event,
    ) -> None:
        self.ws = websocket
        self.stopping = stopping
        self.streams = streams
        self.metrics = metrics
        self.settings = settings
        self.pending: asyncio.Queue[_Request] = asyncio.Queue()
        self.send_lock = asyncio.Lock()
        self.seq = 0
        self.current: AudioStream | None = None
        self.interrupted_as = ("cancelled", "cancelled while running")
        """The error frame of a request stopped while running (a cancel message, or the shutdown)."""

    # ------------------------------------------------------------------ sending
    async def send_json(self, payload: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send_text(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))

    async def send_error(
        self, code: str, message: str, *, request_id: str | None = None, seq: int | None = None
    ) -> None:
        await self.send_json(
            {"type": "error", "id": request_id, "seq": seq, "code": code, "message": scrub(message)}
        )

    # ------------------------------------------------------------------ main loop
    async def run(self) -> None:
        worker = asyncio.create_task(self._work(), name="f5vi-ws-worker")
        try:
            await self.send_json(
                {
                    "type": "ready",
                    "protocol": PROTOCOL,
                    "sample_rate": SAMPLE_RATE,
                    "channels": 1,
                    "encoding": "pcm_s16le",
                    "frame_header": "<4sIII: magic 'F5PC', seq, index, samples",
                }
            )
            while True:
                message = await self._receive()
                if message is None:  # the server is shutting down
                    await self._close_for_shutdown()
                    break
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("text") is not None:
                    await self._on_text(message["text"])
                else:
                    await self.send_error(
                        "invalid_message", "binary frames are not accepted; send JSON text messages"
                    )
        except WebSocketDisconnect:
            pass
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker
            if self.current is not None:
                await self.current.aclose()
            if self.ws.application_state == WebSocketState.CONNECTED and (
                self.ws.client_state == WebSocketState.CONNECTED
            ):
                with contextlib.suppress(Exception):
                    await self.ws.close(code=1000)

    async def _receive(self) -> dict[str, Any] | None:
        """The next client message, or None once the server drains (SIGTERM)."""
        if self.stopping.is_set():
            return None
        receive = asyncio.ensure_future(self.ws.receive())
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({receive, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not receive.done():
                receive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await receive
        return receive.result() if receive.done() and not receive.cancelled() else None

    async def _close_for_shutdown(self) -> None:
        """Stop what runs, refuse what waits, say why, and close with 1012 (service restart)."""
        self.interrupted_as = ("server_shutdown", SHUTDOWN_MESSAGE)
        await self._cancel_all(reason="server_shutdown", message=SHUTDOWN_MESSAGE)
        deadline = time.monotonic() + SHUTDOWN_REPORT_SECONDS
        while self.current is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)  # the request's own error frame goes first
        closing = {"type": "closing", "code": "server_shutdown", "message": SHUTDOWN_MESSAGE}
        with contextlib.suppress(Exception):
            async with self.send_lock:  # no audio frame of the cancelled request after this one
                await self.ws.send_text(json.dumps(closing, separators=(",", ":")))
                await self.ws.close(code=CLOSE_SERVICE_RESTART, reason="server restarting")

    async def _on_text(self, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            await self.send_error("invalid_json", "the message is not valid JSON")
            return
        if not isinstance(data, dict):
            await self.send_error("invalid_message", "a message must be a JSON object")
            return
        kind = data.get("type", "speak")
        request_id = data.get("id") if isinstance(data.get("id"), str) else None
        if kind == "ping":
            await self.send_json({"type": "pong", "id": request_id})
            return
        if kind == "cancel":
            await self._cancel_all()
            return
        if kind != "speak":
            await self.send_error(
                "invalid_message",
                f"unknown message type {kind!r}; use speak, cancel or ping",
                request_id=request_id,
            )
            return
        try:
            message = SpeakMessage.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err.get('loc', ())) or 'message'}: {err.get('msg', '')}"
                for err in exc.errors()[:3]
            )
            await self.send_error("validation_error", problems, request_id=request_id)
            return
        try:
            require_text(message.text)  # refused before it gets a seq, like the other bad messages
        except InvalidTextError as exc:
            await self.send_error(exc.code, exc.message, request_id=request_id)
            return
        if self.pending.qsize() >= MAX_PENDING:
            await self.send_error(
                "too_many_pending",
                f"{MAX_PENDING} requests are already waiting on this connection; wait for a done frame",
                request_id=request_id,
            )
            return
        self.seq += 1
        self.pending.put_nowait(_Request(self.seq, message))

    async def _cancel_all(
        self, *, reason: str = "cancelled", message: str = "cancelled before it started"
    ) -> None:
        dropped: list[_Request] = []
        while not self.pending.empty():
            dropped.append(self.pending.get_nowait())
        if self.current is not None:
            await self.current.aclose()  # the worker reports it
        for request in dropped:
            await self.send_error(reason, message, request_id=request.message.id, seq=request.seq)

    # ------------------------------------------------------------------ requests
    async def _work(self) -> None:
        while True:
            request = await self.pending.get()
            await self._speak(request)

    async def _speak(self, request: _Request) -> None:
        msg, seq = request.message, request.seq
        try:
            params = TTSInput(
                text=msg.text,
                ref_name=msg.voice,
                speed=msg.speed,
                nfe_step=msg.nfe_step,
                seed=msg.seed,
                verify=msg.verify,
            )
            stream = await self.streams.open(params, label="ws")
        except F5viError as exc:
            await self.send_error(exc.code, exc.message, request_id=msg.id, seq=seq)
            return
        self.current = stream
        index = 0
        samples = 0
        first_at: float | None = None
        try:
            await self.send_json(
                {
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
            )
            async for piece in stream:
                for start in range(0, len(piece), MAX_FRAME_SAMPLES):
                    part = piece[start : start + MAX_FRAME_SAMPLES]
                    pcm = await anyio.to_thread.run_sync(to_pcm16, part)
                    count = len(pcm) // 2
                    async with self.send_lock:
                        await self.ws.send_text(
                            json.dumps(
                                {
                                    "type": "chunk",
                                    "id": msg.id,
                                    "seq": seq,
                                    "index": index,
                                    "samples": count,
                                    "bytes": FRAME_HEADER.size + len(pcm),
                                    "offset_samples": samples,
                                },
                                separators=(",", ":"),
                            )
                        )
                        await self.ws.send_bytes(FRAME_HEADER.pack(FRAME_MAGIC, seq, index, count) + pcm)
                    if first_at is None:
                        first_at = time.monotonic()
                        self.metrics.first_chunk_latency.labels("ws").observe(first_at - request.received)
                    index += 1
                    samples += count
            if stream.closed:  # cancelled by a cancel message
                code, message = self.interrupted_as
                await self.send_error(code, message, request_id=msg.id, seq=seq)
                return
            elapsed = time.monotonic() - request.received
            synthesis = stream.stats.synthesis_seconds
            await self.send_json(
                {
                    "type": "done",
                    "id": msg.id,
                    "seq": seq,
                    "chunks": index,
                    "samples": samples,
                    "duration_seconds": round(samples / stream.sample_rate, 3),
                    "first_chunk_seconds": round(first_at - request.received, 3) if first_at else None,
                    "elapsed_seconds": round(elapsed, 3),
                    "rtf": round(synthesis / (samples / stream.sample_rate), 4)
                    if synthesis and samples
                    else None,
                    **_verification(stream),
                }
            )
        except SynthesisCancelled as exc:
            await self.send_error("cancelled", exc.message, request_id=msg.id, seq=seq)
        except F5viError as exc:
            await self.send_error(exc.code, exc.message, request_id=msg.id, seq=seq)
        finally:
            self.current = None
            await stream.aclose()


def _verification(stream: AudioStream) -> dict[str, Any]:
    """The ``done`` frame's per-chunk verification (requests with ``verify``)."""
    reports = stream.stats.verification
    return {} if reports is None else {"verification": reports}
