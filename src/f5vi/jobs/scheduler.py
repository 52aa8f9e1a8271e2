"""The one engine queue and the task that works through it.

Every kind of queued engine work is a :class:`~f5vi.jobs.queue.WorkItem` in one bounded FIFO: TTS
jobs and streams. One asyncio task takes the items in arrival order and starts the handler registered
for the item's kind; up to ``concurrency`` of them run at the same time, and their chunks share the
engine's ODE batches (see :mod:`f5vi.engine.shared_sampler`, which also keeps it fair between them).

Plain blocking model calls (ASR of a voice without a transcript, freeing memory) are not queued
behind jobs: :meth:`EngineScheduler.run_call` hands them to the sampling thread, which runs them
between two ODE steps (at once when idle). So a call never waits for the running work to drain, the
running work waits at most for the call itself, and a call whose caller has gone (its task
cancelled: a client that disconnected) before it started is dropped. Blocking model work runs in
worker threads so the event loop never waits for it.

The scheduler knows nothing about jobs, streams or HTTP: the job manager and the stream service
register handlers (and a way to interrupt their running item at shutdown). It also holds the loaded
engine and its status, which every entry point consults before it accepts work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread

from f5vi.engine.types import CancelToken, LinkedCancelToken
from f5vi.jobs.errors import PreviewsBusyError, QueueFullError, ServiceUnavailableError
from f5vi.jobs.queue import WorkItem, WorkQueue
from f5vi.logging_setup import log_context

if TYPE_CHECKING:
    from f5vi.engine.synthesizer import Synthesizer

logger = logging.getLogger(__name__)
T = TypeVar("T")

WorkHandler = Callable[[WorkItem], Awaitable[None]]
Interrupt = Callable[[WorkItem], None]


class EngineStatus(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class CurrentWork:
    kind: str
    key: str
    started_monotonic: float


@dataclass(frozen=True)
class _Kind:
    run: WorkHandler
    interrupt: Interrupt | None


class EngineScheduler:
    """The engine (once loaded), its status, and the queue of work in front of it.

    Work may be queued before the engine is attached (jobs submitted while the model loads); the
    loop starts taking items once :meth:`attach` was called.
    """

    def __init__(
        self, queue_max: int, synthesizer: Synthesizer | None = None, *, concurrency: int | None = None
    ) -> None:
        self.queue = WorkQueue(queue_max)
        self._configured_concurrency = concurrency
        self.concurrency = max(1, concurrency or 1)
        """Jobs and streams running at once (set from the engine's device on attach unless configured)."""
        self._kinds: dict[str, _Kind] = {}
        self._synth: Synthesizer | None = None
        self._status = EngineStatus.LOADING
        self._error: str | None = None
        self._ready = asyncio.Event()
        self._settled = asyncio.Event()
        """Set once the model loaded or failed to: a call waits for that, not for the queue."""
        self._calls_waiting = 0
        self._previews = 0
        self._task: asyncio.Task[None] | None = None
        self._running: dict[WorkItem, tuple[CurrentWork, asyncio.Task[None]]] = {}
        self._changed = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._avg_work_seconds: float | None = None
        self._background: set[asyncio.Task[Any]] = set()
        if synthesizer is not None:
            self.attach(synthesizer)

    # ------------------------------------------------------------------ engine
    def attach(self, synthesizer: Synthesizer) -> None:
        """The model is loaded: queued work starts running."""
        if self._configured_concurrency is None:
            self.concurrency = default_concurrency(synthesizer.device.type)
        self._synth = synthesizer
        self._status = EngineStatus.READY
        self._error = None
        self._ready.set()
        self._settled.set()

    def failed(self, message: str) -> None:
        """The model could not be loaded: new work is refused (503); queued jobs stay on disk."""
        self._status = EngineStatus.FAILED
        self._error = message
        self._settled.set()

    @property
    def synthesizer(self) -> Synthesizer | None:
        return self._synth

    @property
    def status(self) -> EngineStatus:
        return self._status

    @property
    def error(self) -> str | None:
        return self._error

    def check_not_failed(self) -> None:
        if self._status is EngineStatus.FAILED:
            raise ServiceUnavailableError("the synthesis engine failed to load; see /health")

    def require_ready(self) -> Synthesizer:
        """The engine, for work that cannot wait in the queue for it to load (a live stream)."""
        self.check_not_failed()
        if self._synth is None or self._status is not EngineStatus.READY:
            raise ServiceUnavailableError("the model is still loading; retry shortly", retry_after_seconds=5)
        return self._synth

    # ------------------------------------------------------------------ kinds and queue
    def register(self, kind: str, run: WorkHandler, *, interrupt: Interrupt | None = None) -> None:
        """Run items of ``kind`` with ``run``; ``interrupt(item)`` asks a running one to stop (shutdown)."""
        self._kinds[kind] = _Kind(run, interrupt)

    def enqueue(self, item: WorkItem, *, force: bool = False) -> None:
        """Queue ``item`` (bounded unless ``force``: restart recovery must not drop jobs)."""
        if item.kind not in self._kinds:
            raise ValueError(f"no handler for work of kind {item.kind!r}")
        if not force:
            self.check_room()
        self.queue.put(item, force=True)

    def check_room(self) -> None:
        """Raise :class:`QueueFullError` (429) if one more item would exceed the bound."""
        if len(self.queue) >= self.queue.maxsize:
            raise QueueFullError(len(self.queue), self.retry_after_seconds())

    @property
    def running(self) -> list[CurrentWork]:
        """What runs now, oldest first."""
        return sorted((work for work, _ in self._running.values()), key=lambda w: w.started_monotonic)

    @property
    def current(self) -> CurrentWork | None:
        """The oldest running item (None when idle)."""
        running = self.running
        return running[0] if running else None

    @property
    def average_work_seconds(self) -> float | None:
        """Smoothed duration of recent jobs and streams (not plain calls); None before the first."""
        return self._avg_work_seconds

    def retry_after_seconds(self) -> int:
        per_item = self._avg_work_seconds or 10.0
        return max(1, min(3600, math.ceil(per_item)))

    # ------------------------------------------------------------------ blocking calls
    async def run_call(self, fn: Callable[[], T], *, cancel: CancelToken | None = None) -> T:
        """Run a blocking model call in the engine's turn: between two ODE steps, e.g. ASR of a voice.

        Heavy model work must not overlap a step on the same device; it need not wait for the
        running requests to finish either (see the module docstring). If the caller goes away — its
        task is cancelled, or ``cancel`` is set — before the call started, it is dropped. At most
        ``queue_max`` calls wait at once (429 beyond). While the model loads the call waits for it;
        if it failed to load (or no engine will come), the call runs at once in a worker thread.
        """
        if self._status is EngineStatus.FAILED:
            return await anyio.to_thread.run_sync(fn)
        if self._calls_waiting >= self.queue.maxsize:
            raise QueueFullError(self._calls_waiting, self.retry_after_seconds())
        self._calls_waiting += 1
        try:
            if self._synth is None and self._task is not None and self._status is EngineStatus.LOADING:
                await self._settled.wait()
            synth = self._synth
            if synth is None or self._status is EngineStatus.FAILED:
                return await anyio.to_thread.run_sync(fn)
            token = LinkedCancelToken(cancel)
            try:
                return await anyio.to_thread.run_sync(
                    synth.run_between_steps, fn, token, abandon_on_cancel=True
                )
            except asyncio.CancelledError:
                token.cancel()  # not started yet: it never will; running: its result is not waited for
                raise
        finally:
            self._calls_waiting -= 1

    @contextlib.asynccontextmanager
    async def preview_slot(self) -> AsyncIterator[None]:
        """One of at most ``concurrency`` text previews (``POST /normalize``) planned at once.

        Planning is CPU work (normaliser, reference preparation) beside the synthesis; beyond the
        bound a preview is refused like a full queue (429 with Retry-After) instead of piling up.
        """
        if self._previews >= self.concurrency:
            raise PreviewsBusyError(self._previews)
        self._previews += 1
        try:
            yield
        finally:
            self._previews -= 1

    def schedule_call(self, fn: Callable[[], Any]) -> None:
        """Like :meth:`run_call` without waiting for the result (errors are logged)."""
        task = asyncio.ensure_future(self.run_call(fn))
        self._background.add(task)

        def _done(done: asyncio.Future[Any]) -> None:
            self._background.discard(task)
            if not done.cancelled() and done.exception() is not None:
                logger.error("scheduled engine call failed: %s", done.exception())

        task.add_done_callback(_done)

    # ------------------------------------------------------------------ the loop
    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._loop(), name="f5vi-engine")

    async def stop(self, *, timeout: float = 30.0) -> None:
        """Take no further item; interrupt the running ones and wait (up to ``timeout``) until they end.

        Items still queued stay in the queue object (jobs are on disk and resume at the next start).
        """
        self._stopping = True
        self._changed.set()
        for item in list(self._running):
            interrupt = self._kinds[item.kind].interrupt
            if interrupt is not None:
                interrupt(item)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        for _, running in list(self._running.values()):  # past the timeout: stop waiting for them
            running.cancel()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _loop(self) -> None:
        await self._ready.wait()
        while not self._stopping:
            await self._until(lambda: len(self._running) < self.concurrency)
            item = await self.queue.get()
            if self._stopping:
                self.queue.put_front(item)
                return
            self._start(item)

    async def _until(self, condition: Callable[[], bool]) -> None:
        while not condition() and not self._stopping:
            self._changed.clear()
            await self._changed.wait()

    def _start(self, item: WorkItem) -> asyncio.Task[None]:
        work = CurrentWork(item.kind, item.key, time.monotonic())
        task = asyncio.create_task(self._run(item, work), name=f"f5vi-{item.kind}-{item.key}")
        self._running[item] = (work, task)
        self._idle.clear()
        return task

    async def _run(self, item: WorkItem, work: CurrentWork) -> None:
        try:
            # Every log line of this turn (threads included) carries the job's or stream's id.
            with log_context(item.key):
                await self._kinds[item.kind].run(item)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("engine task: %s work %s failed unexpectedly", item.kind, item.key)
        finally:
            self._running.pop(item, None)
            if not self._running:
                self._idle.set()
            self._changed.set()
        self._record_duration(time.monotonic() - work.started_monotonic)

    def _record_duration(self, seconds: float) -> None:
        previous = self._avg_work_seconds
        self._avg_work_seconds = seconds if previous is None else 0.7 * previous + 0.3 * seconds


def default_concurrency(device_type: str) -> int:
    """Jobs and streams in flight at once when ``F5VI_ENGINE_CONCURRENCY`` is unset.

    On a GPU they share ODE batches, which is where the throughput comes from. On a CPU batching is
    off (one chunk at a time measured fastest), so concurrency buys no throughput there, but it still
    lets a short request's chunks run between a long job's instead of after all of them.
    """
    return 16 if device_type == "cuda" else 4
