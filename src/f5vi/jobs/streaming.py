"""Streaming synthesis as work on the engine queue.

A streaming request is a :class:`~f5vi.jobs.queue.WorkItem` of kind ``"stream"`` in the SAME FIFO
queue as TTS jobs, so streams and jobs take turns on the one engine (GPU) in arrival order. When its
turn comes the engine task runs :meth:`Synthesizer.stream` in a worker thread; each float32 piece is
handed to the event loop through a small bounded channel (:class:`AudioStream`), so a slow client
slows the synthesis down instead of piling audio up in memory. A client that stops reading for
``stall_timeout`` seconds, disconnects, or calls :meth:`AudioStream.aclose` cancels the synthesis
within one ODE step, and the engine moves on to the next item.

Nothing here is persisted: a stream lives as long as its connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import numpy as np

from f5vi.engine.errors import EngineError, InvalidTextError, SynthesisCancelled
from f5vi.engine.types import SAMPLE_RATE, CancelToken, ReferenceVoice, SynthesisRequest
from f5vi.jobs.errors import ServiceUnavailableError
from f5vi.jobs.manager import ENGINE_FAILED, ENGINE_READY, JobManager
from f5vi.jobs.queue import WorkItem
from f5vi.logging_setup import log_context
from f5vi.voices.errors import VoiceLibraryError

if TYPE_CHECKING:
    from f5vi.metrics import Metrics

logger = logging.getLogger(__name__)

WORK_KIND_STREAM = "stream"

DEFAULT_MAX_BUFFERED = 4
"""Pieces waiting for the client before the engine thread blocks (each is one or more chunks)."""
DEFAULT_STALL_TIMEOUT = 60.0


@dataclass(frozen=True)
class StreamParams:
    """What a streaming (or one-shot) synthesis needs; ``None`` means the server default."""

    text: str
    voice: str
    speed: float | None = None
    nfe_step: int | None = None
    seed: int | None = None
    whole: bool = False
    """Synthesise in one go (chunks batched in any order: faster) and deliver one piece."""
    label: str = "stream"
    """Who asked (``openai``, ``ws``): a metrics label."""


@dataclass
class StreamStats:
    queued_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    first_piece_at: float | None = None
    finished_at: float | None = None
    samples: int = 0
    pieces: int = 0
    chunk_count: int | None = None
    outcome: str | None = None  # completed, cancelled, failed

    @property
    def audio_seconds(self) -> float:
        return self.samples / SAMPLE_RATE

    @property
    def synthesis_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


class _End:
    """Sentinel: the producer finished (``error`` None) or failed."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class AudioStream:
    """One streaming synthesis: ``async for piece in stream`` yields float32 numpy arrays in order.

    Iteration ends after the last piece, or raises the engine/voice error that stopped it
    (:class:`SynthesisCancelled` if it was cancelled). Always ``await stream.aclose()`` (or use
    ``async with``): it cancels a synthesis still running or still queued.
    """

    def __init__(
        self,
        stream_id: str,
        request: SynthesisRequest,
        voice: Any,
        params: StreamParams,
        *,
        max_buffered: int,
        stall_timeout: float,
    ) -> None:
        self.id = stream_id
        self.request = request
        self.voice = voice
        self.params = params
        self.sample_rate = SAMPLE_RATE
        self.token = CancelToken()
        self.stats = StreamStats()
        self.stall_timeout = stall_timeout
        self._max = max(1, max_buffered)
        self._items: deque[np.ndarray | _End] = deque()
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = False
        self._ended = False
        self._loop = asyncio.get_running_loop()

    @property
    def closed(self) -> bool:
        return self._closed

    # ---------------------------------------------------------------- consumer side (event loop)
    def __aiter__(self) -> AsyncIterator[np.ndarray]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[np.ndarray]:
        while True:
            item = await self.get()
            if item is None:
                return
            yield item

    async def get(self) -> np.ndarray | None:
        """The next piece, None at the end; raises what stopped the synthesis."""
        while True:
            if self._items:
                item = self._items.popleft()
                self._writable.set()
                if isinstance(item, _End):
                    self._ended = True
                    if item.error is not None:
                        raise item.error
                    return None
                return item
            if self._ended or self._closed:
                return None
            self._readable.clear()
            await self._readable.wait()

    async def aclose(self) -> None:
        """Stop: cancel the synthesis (queued or running) and drop buffered audio."""
        if self._closed:
            return
        self._closed = True
        self.token.cancel()
        self._items.clear()
        self._writable.set()
        self._readable.set()

    async def __aenter__(self) -> AudioStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---------------------------------------------------------------- producer side
    async def _put(self, item: np.ndarray) -> None:
        while len(self._items) >= self._max and not self._closed:
            self._writable.clear()
            await self._writable.wait()
        if self._closed:
            raise SynthesisCancelled("the client went away")
        self._items.append(item)
        self._readable.set()

    def put_from_thread(self, piece: np.ndarray) -> None:
        """Hand a piece to the event loop; blocks while the buffer is full (backpressure)."""
        if self._closed:
            raise SynthesisCancelled("the client went away")
        future = asyncio.run_coroutine_threadsafe(self._put(piece), self._loop)
        try:
            future.result(timeout=self.stall_timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            self.token.cancel()
            raise SynthesisCancelled(
                f"the client read nothing for {self.stall_timeout:g} s; stream stopped"
            ) from None
        now = time.monotonic()
        if self.stats.first_piece_at is None:
            self.stats.first_piece_at = now
        self.stats.pieces += 1
        self.stats.samples += int(piece.size)

    def _end(self, error: BaseException | None) -> None:
        """Event loop: mark the end (never blocks; the end marker may exceed the buffer bound)."""
        if not self._closed:
            self._items.append(_End(error))
            self._readable.set()


class StreamService:
    """Opens :class:`AudioStream` s and runs them on the manager's engine task."""

    def __init__(
        self,
        manager: JobManager,
        *,
        metrics: Metrics | None = None,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    ) -> None:
        self.manager = manager
        self.metrics = metrics
        self.max_buffered = max_buffered
        self.stall_timeout = stall_timeout
        self._open: set[AudioStream] = set()
        manager.register_handler(WORK_KIND_STREAM, self._run)

    @property
    def settings(self) -> Any:
        return self.manager.settings

    @property
    def active(self) -> int:
        return len(self._open)

    async def open(self, params: StreamParams) -> AudioStream:
        """Check the request now (voice, text, ranges) and queue it; the engine runs it in turn.

        Raises ``ServiceUnavailableError`` while the model loads or after it failed,
        ``QueueFullError`` when the queue is full, voice-library and engine validation errors.
        """
        manager = self.manager
        if manager.engine_status == ENGINE_FAILED:
            raise ServiceUnavailableError("the synthesis engine failed to load; see /health")
        synth = manager.synthesizer
        if manager.engine_status != ENGINE_READY or synth is None:
            raise ServiceUnavailableError("the model is still loading; retry shortly", retry_after_seconds=5)
        if not params.text.strip():
            raise InvalidTextError("text is empty")
        voice = await anyio.to_thread.run_sync(manager.voices.resolve, params.voice)
        s = self.settings
        request = SynthesisRequest(
            text=params.text,
            reference=ReferenceVoice(
                audio_path=voice.audio_path, transcript=voice.transcript, voice_id=voice.id
            ),
            speed=float(params.speed if params.speed is not None else s.speed),
            nfe_step=int(params.nfe_step if params.nfe_step is not None else s.nfe_step),
            cfg_strength=s.cfg_strength,
            sway_sampling_coef=s.sway_sampling_coef,
            ode_method=s.ode_method,
            seed=params.seed,
            cross_fade_seconds=s.cross_fade_seconds,
        )
        synth.validate(request)
        stream = AudioStream(
            f"stream_{secrets.token_hex(8)}",
            request,
            voice,
            params,
            max_buffered=self.max_buffered,
            stall_timeout=self.stall_timeout,
        )
        manager.enqueue_work(WorkItem(kind=WORK_KIND_STREAM, key=stream.id, payload=stream))
        self._open.add(stream)
        if self.metrics is not None:
            self.metrics.streams_active.set(len(self._open))
        logger.info(
            "stream %s queued (%s, voice=%s, %d chars)", stream.id, params.label, voice.id, len(params.text)
        )
        return stream

    async def close_all(self) -> None:
        """Shutdown: cancel every open stream."""
        for stream in list(self._open):
            await stream.aclose()

    # ---------------------------------------------------------------- engine turn
    async def _run(self, item: WorkItem) -> None:
        stream: AudioStream = item.payload
        try:
            if stream.closed:
                stream.stats.outcome = "cancelled"
                logger.info("stream %s dropped: the client left while it waited", stream.id)
                return
            with log_context(stream.id):
                await self._produce(stream)
        finally:
            self._open.discard(stream)
            if self.metrics is not None:
                self.metrics.streams_active.set(len(self._open))

    async def _produce(self, stream: AudioStream) -> None:
        synth = self.manager.synthesizer
        assert synth is not None
        voices = self.manager.voices
        stats = stream.stats
        stats.started_at = time.monotonic()

        def on_progress(fraction: float, stage: str, chunk_index: int, chunk_count: int) -> None:
            if chunk_count:
                stats.chunk_count = chunk_count

        def produce() -> None:
            request = stream.request
            if request.reference.transcript is None:
                voice = voices.ensure_transcript(stream.voice)
                request = _with_transcript(request, voice.transcript)
            stream.token.raise_if_cancelled()
            if stream.params.whole:
                result = synth.synthesize(request, on_progress, stream.token)
                stream.put_from_thread(result.audio)
                return
            for piece in synth.stream(request, on_progress, stream.token):
                stream.put_from_thread(piece)

        error: BaseException | None = None
        try:
            await anyio.to_thread.run_sync(produce)
            stats.outcome = "completed"
        except SynthesisCancelled as exc:
            stats.outcome = "cancelled"
            error = exc
        except (EngineError, VoiceLibraryError) as exc:
            stats.outcome = "failed"
            error = exc
            logger.warning("stream %s failed: %s: %s", stream.id, exc.code, exc.message)
        except Exception as exc:
            stats.outcome = "failed"
            logger.exception("stream %s failed unexpectedly", stream.id)
            error = EngineError(
                f"synthesis failed unexpectedly ({type(exc).__name__}); see the server log",
                code="internal_error",
            )
        stats.finished_at = time.monotonic()
        stream._end(error)
        seconds = stats.synthesis_seconds or 0.0
        if self.metrics is not None:
            self.metrics.observe_stream(
                stream.params.label, stats.outcome or "failed", seconds, stats.audio_seconds
            )
        logger.info(
            "stream %s %s: %.2fs audio in %.2fs (%d piece(s), first after %s)",
            stream.id,
            stats.outcome,
            stats.audio_seconds,
            seconds,
            stats.pieces,
            f"{stats.first_piece_at - stats.started_at:.2f}s" if stats.first_piece_at else "-",
        )


def _with_transcript(request: SynthesisRequest, transcript: str | None) -> SynthesisRequest:
    from dataclasses import replace

    return replace(request, reference=replace(request.reference, transcript=transcript))
