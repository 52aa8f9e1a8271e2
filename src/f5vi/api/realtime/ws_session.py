"""One ``WS /tts/stream`` connection: its messages, its queue of requests, cancel and shutdown.

Requests of one connection run one after the other, each through the shared engine queue like a job;
closing the socket cancels what runs. At shutdown what runs or waits gets an ``error`` frame
(``server_shutdown``), then a ``closing`` frame, and the socket closes with 1012.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from fastapi import WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from f5vi.api.errors import validation_message
from f5vi.api.realtime.frames import FirstChunkClock, encoded_frames, split_pieces
from f5vi.api.realtime.ws_protocol import (
    CLOSE_SERVICE_RESTART,
    FRAME_HEADER,
    FRAME_MAGIC,
    MAX_FRAME_SAMPLES,
    MAX_PENDING,
    PROTOCOL,
    SHUTDOWN_MESSAGE,
    SHUTDOWN_REPORT_SECONDS,
    QueuedRequest,
    SpeakMessage,
    chunk_frame,
    done_frame,
    start_frame,
    words_before,
)
from f5vi.config import Settings
from f5vi.engine.errors import InvalidTextError, SynthesisCancelled
from f5vi.engine.stream_encoder import to_pcm16
from f5vi.engine.types import SAMPLE_RATE
from f5vi.engine.validation import require_text
from f5vi.errors import F5viError, scrub
from f5vi.jobs.streaming import AudioStream, StreamService
from f5vi.metrics import Metrics

logger = logging.getLogger(__name__)


class WsSession:
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
        self.pending: asyncio.Queue[QueuedRequest] = asyncio.Queue()
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
        return dict(receive.result()) if receive.done() and not receive.cancelled() else None

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
                f"{'.'.join(str(p) for p in err.get('loc', ())) or 'message'}: {validation_message(err)}"
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
        self.pending.put_nowait(QueuedRequest(self.seq, message))

    async def _cancel_all(
        self, *, reason: str = "cancelled", message: str = "cancelled before it started"
    ) -> None:
        dropped: list[QueuedRequest] = []
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

    async def _speak(self, request: QueuedRequest) -> None:
        msg, seq = request.message, request.seq
        try:
            stream = await self.streams.open(msg.to_input(), label="ws")
        except F5viError as exc:
            await self.send_error(exc.code, exc.message, request_id=msg.id, seq=seq)
            return
        self.current = stream
        index = 0
        samples = 0
        clock: FirstChunkClock | None = None
        try:
            await self.send_json(start_frame(msg, seq, stream))
            clock = FirstChunkClock(self.metrics, "ws", request.received)
            frames = encoded_frames(split_pieces(stream, MAX_FRAME_SAMPLES), to_pcm16, clock)
            async for pcm in frames:
                count = len(pcm) // 2
                async with self.send_lock:
                    frame = chunk_frame(
                        msg, seq, index, count, samples, words_before(stream, samples + count)
                    )
                    await self.ws.send_text(json.dumps(frame, separators=(",", ":")))
                    await self.ws.send_bytes(FRAME_HEADER.pack(FRAME_MAGIC, seq, index, count) + pcm)
                index += 1
                samples += count
            if stream.closed:  # cancelled by a cancel message
                code, message = self.interrupted_as
                await self.send_error(code, message, request_id=msg.id, seq=seq)
                return
            elapsed = time.monotonic() - request.received
            first = clock.first_seconds if clock else None
            await self.send_json(done_frame(msg, seq, stream, index, samples, first, elapsed))
        except SynthesisCancelled as exc:
            await self.send_error("cancelled", exc.message, request_id=msg.id, seq=seq)
        except F5viError as exc:
            await self.send_error(exc.code, exc.message, request_id=msg.id, seq=seq)
        finally:
            self.current = None
            await stream.aclose()
