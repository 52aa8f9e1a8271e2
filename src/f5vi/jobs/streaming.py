"""Streaming synthesis as work on the engine queue.

A streaming request is a :class:`~f5vi.jobs.queue.WorkItem` of kind ``"stream"`` in the SAME FIFO
queue as TTS jobs, so streams and jobs take turns on the one engine (GPU) in arrival order. When its
turn comes the engine task runs :meth:`Synthesizer.stream` in a worker thread; each float32 piece is
handed to the event loop through a small bounded channel (:mod:`f5vi.jobs.channel`), so a slow
client slows the synthesis down instead of piling audio up in memory. A client that stops reading for
``stall_timeout`` seconds, disconnects, or calls :meth:`AudioStream.aclose` cancels the synthesis
within one ODE step, and the engine moves on to the next item.

Nothing here is persisted: a stream lives as long as its connection.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

import anyio.to_thread
import numpy as np

from f5vi.engine.errors import SynthesisCancelled
from f5vi.engine.timing.types import TimedWord, Timestamps
from f5vi.engine.types import SAMPLE_RATE, CancelToken, ChunkVerification, SynthesisRequest
from f5vi.errors import F5viError, as_f5vi_error
from f5vi.jobs.channel import PieceChannel
from f5vi.jobs.queue import WorkItem
from f5vi.jobs.requests import RequestBuilder, TTSInput, VoiceResolver
from f5vi.jobs.scheduler import EngineScheduler
from f5vi.jobs.voice_turn import with_voices_ready
from f5vi.voices.directory import Voice

logger = logging.getLogger(__name__)

WORK_KIND_STREAM = "stream"


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
    verification: list[dict[str, object]] | None = None
    """With ``verify``: how each chunk did, in the order they were settled (text order)."""

    @property
    def audio_seconds(self) -> float:
        return self.samples / SAMPLE_RATE

    def verification_sink(self) -> Callable[[ChunkVerification], None]:
        """Where the engine reports each settled chunk of a verified stream."""
        reports = self.verification if self.verification is not None else []

        def add(report: ChunkVerification) -> None:
            reports.append(report.as_dict())

        return add

    @property
    def synthesis_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


@dataclass(eq=False)
class AudioStream:
    """One streaming synthesis: ``async for piece in stream`` yields float32 numpy arrays in order.

    Iteration ends after the last piece, or raises the engine/voice error that stopped it
    (:class:`SynthesisCancelled` if it was cancelled). Always ``await stream.aclose()`` (or use
    ``async with``): it cancels a synthesis still running or still queued.
    """

    id: str
    request: SynthesisRequest
    voice: Voice
    whole: bool
    """Synthesise in one go (chunks batched in any order: faster) and deliver one piece."""
    label: str
    """Who asked (``openai``, ``ws``): a metrics label."""
    channel: PieceChannel
    sample_rate: int = SAMPLE_RATE
    token: CancelToken = field(default_factory=CancelToken)
    stats: StreamStats = field(default_factory=StreamStats)
    timestamps: Timestamps | None = None
    """A ``whole`` stream's timestamps, set before its one piece is handed over."""
    words: deque[TimedWord] = field(default_factory=deque)
    """Timed words of a streamed synthesis, each added before any audio of its chunk is handed over
    (a reader takes them off the front as its audio reaches their start)."""
    on_close: Callable[[AudioStream], None] | None = None
    """Told when the stream is closed (the service takes it out of the queue if it still waits)."""

    @property
    def closed(self) -> bool:
        return self.channel.closed

    def __aiter__(self) -> AsyncIterator[np.ndarray]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[np.ndarray]:
        while (item := await self.get()) is not None:
            yield item

    async def get(self) -> np.ndarray | None:
        """The next piece, None at the end; raises what stopped the synthesis."""
        return await self.channel.get()

    async def aclose(self) -> None:
        """Stop: cancel the synthesis (queued or running) and drop buffered audio."""
        if not self.channel.closed:
            self.channel.close()
            self.token.cancel()
            if self.on_close is not None:
                self.on_close(self)

    async def __aenter__(self) -> AudioStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def put_from_thread(self, piece: np.ndarray) -> None:
        """Producer thread: hand a piece over (blocks while the reader is behind); stats follow."""
        try:
            self.channel.put_from_thread(piece)
        except SynthesisCancelled:
            self.token.cancel()
            raise
        if self.stats.first_piece_at is None:
            self.stats.first_piece_at = time.monotonic()
        self.stats.pieces += 1
        self.stats.samples += int(piece.size)

    def finish(self, error: BaseException | None) -> None:
        self.channel.finish(error)


class StreamObserver(Protocol):
    """Who wants to know about streams (the service's metrics); the job system knows no more of it."""

    def streams_open(self, count: int) -> None:
        """Streams queued or running now."""

    def stream_finished(self, label: str, outcome: str, seconds: float, audio_seconds: float) -> None:
        """A stream ended ``completed``, ``cancelled`` or ``failed`` after ``seconds`` of synthesis."""


@dataclass(eq=False)
class StreamService:
    """Opens :class:`AudioStream` s and runs them on the engine queue."""

    scheduler: EngineScheduler
    requests: RequestBuilder
    voices: VoiceResolver
    max_buffered: int
    """Pieces a stream holds for a slow reader before the engine thread waits (backpressure)."""
    stall_timeout: float
    """A reader that takes nothing for this long cancels its stream (and frees the engine)."""
    observer: StreamObserver | None = None
    _open: dict[str, AudioStream] = field(default_factory=dict, init=False)
    """Streams queued or running, by id (the id is their work item's key)."""

    @property
    def active(self) -> int:
        return len(self._open)

    async def open(self, params: TTSInput, *, whole: bool = False, label: str = "stream") -> AudioStream:
        """Check the request now (voice, text, ranges) and queue it; the engine runs it in turn.

        Raises ``ServiceUnavailableError`` while the model loads or after it failed,
        ``QueueFullError`` when the queue is full, voice-library and engine validation errors.
        """
        self.scheduler.require_ready()
        prepared = await self.requests.prepare(params)
        stream = AudioStream(
            f"stream_{secrets.token_hex(8)}",
            prepared.synthesis,
            prepared.voice,
            whole=whole,
            label=label,
            channel=PieceChannel(self.max_buffered, self.stall_timeout),
            on_close=self._closed,
        )
        self.scheduler.enqueue(WorkItem(kind=WORK_KIND_STREAM, key=stream.id))
        self._open[stream.id] = stream
        self._count_open()
        logger.info(
            "stream %s queued (%s, voice=%s, %d chars)", stream.id, label, prepared.voice.id, len(params.text)
        )
        return stream

    async def close_all(self) -> None:
        """Shutdown: cancel every open stream."""
        for stream in list(self._open.values()):
            await stream.aclose()

    def _count_open(self) -> None:
        if self.observer is not None:
            self.observer.streams_open(len(self._open))

    def _closed(self, stream: AudioStream) -> None:
        """A stream closed while it waited in the queue gives its place up at once."""
        if self.scheduler.queue.remove(stream.id) is not None:
            stream.stats.outcome = "cancelled"
            self._open.pop(stream.id, None)
            self._count_open()
            logger.info("stream %s dropped from the queue: its client left", stream.id)

    def interrupt(self, item: WorkItem) -> None:
        """Shutdown: stop the stream's synthesis at its next ODE step."""
        stream = self._open.get(item.key)
        if stream is not None:
            stream.token.cancel()

    # ---------------------------------------------------------------- engine turn
    async def run(self, item: WorkItem) -> None:
        """The stream's engine turn (registered with the scheduler by the runtime)."""
        stream = self._open.get(item.key)
        if stream is None:  # cannot happen: only open() queues streams, and only run() forgets them
            logger.error("stream %s is not open; skipped", item.key)
            return
        try:
            if stream.closed:
                stream.stats.outcome = "cancelled"
                logger.info("stream %s dropped: the client left while it waited", stream.id)
                return
            await self._produce(stream)
        finally:
            self._open.pop(stream.id, None)
            self._count_open()

    async def _produce(self, stream: AudioStream) -> None:
        synth = self.scheduler.synthesizer
        assert synth is not None
        voices = self.voices
        stats = stream.stats
        stats.started_at = time.monotonic()

        def on_progress(fraction: float, stage: str, chunk_index: int, chunk_count: int) -> None:
            if chunk_count:
                stats.chunk_count = chunk_count

        def produce(request: SynthesisRequest) -> None:
            stream.token.raise_if_cancelled()
            if request.verify is not None:
                stats.verification = []
            if stream.whole:
                result = synth.synthesize(request, on_progress, stream.token)
                stream.timestamps = result.timestamps
                if result.verification is not None:
                    stats.verification = [v.as_dict() for v in result.verification]
                stream.put_from_thread(result.audio)
                return
            on_verified = None if stats.verification is None else stats.verification_sink()
            for piece in synth.stream(
                request, on_progress, stream.token, on_words=stream.words.extend, on_verified=on_verified
            ):
                stream.put_from_thread(piece)

        error: F5viError | None = None
        try:
            # its own voice or a tagged one without a transcript: transcribed between ODE steps
            request = await with_voices_ready(stream.request, voices, self.scheduler, cancel=stream.token)
            await anyio.to_thread.run_sync(produce, request)
            stats.outcome = "completed"
        except SynthesisCancelled as exc:
            stats.outcome = "cancelled"
            error = exc
        except Exception as exc:
            stats.outcome = "failed"
            error = as_f5vi_error(exc)
            if error.is_internal:
                logger.exception("stream %s failed unexpectedly", stream.id)
            else:
                logger.warning("stream %s failed: %s: %s", stream.id, error.code, error.message)
        stats.finished_at = time.monotonic()
        stream.finish(error)
        seconds = stats.synthesis_seconds or 0.0
        if self.observer is not None:
            self.observer.stream_finished(
                stream.label, stats.outcome or "failed", seconds, stats.audio_seconds
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
