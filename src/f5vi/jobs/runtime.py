"""The job system of one process, put together and started and stopped in the right order.

One :class:`~f5vi.jobs.scheduler.EngineScheduler` (the engine queue) serves the
:class:`~f5vi.jobs.manager.JobManager` (durable jobs) and the
:class:`~f5vi.jobs.streaming.StreamService` (live streams). The HTTP app's lifespan, the RunPod worker
(through that lifespan) and the tests all build it here, so the order below holds everywhere:

- start: open the job store and re-queue what was waiting, then start the engine loop;
- drain (on SIGTERM, *before* the HTTP server waits for its connections): refuse new work, tell
  long-lived connections (SSE, WebSocket) to end (:attr:`JobRuntime.stopping`), cancel open streams,
  interrupt the running item (a job goes back to the queue, not counted as an attempt) and wait for
  it — jobs that had not started stay queued on disk as they were;
- stop: drain if that has not happened, then close the store.

Draining first is what keeps a deploy inside an orchestrator's grace period: otherwise the server
waits for connected clients while the engine keeps working through the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import TYPE_CHECKING

from f5vi.config import Settings
from f5vi.jobs.background import BackgroundTasks
from f5vi.jobs.events import EventHub
from f5vi.jobs.manager import JobManager
from f5vi.jobs.models import JOB_KIND_TTS
from f5vi.jobs.progress import ProgressWriter
from f5vi.jobs.queue import WorkItem
from f5vi.jobs.requests import RequestBuilder, VoiceResolver, load_lexicons
from f5vi.jobs.retention import OutputRetention
from f5vi.jobs.runner import Encoder, JobRunner, default_encoder
from f5vi.jobs.scheduler import EngineScheduler
from f5vi.jobs.sharing import WorkSharing, default_instance_id
from f5vi.jobs.store import JobStore
from f5vi.jobs.streaming import WORK_KIND_STREAM, StreamObserver, StreamService
from f5vi.jobs.tracker import JobTracker
from f5vi.storage import OutputStorage, StorageConfigError

if TYPE_CHECKING:
    from f5vi.engine.synthesizer import Synthesizer


class JobRuntime:
    """The composition root of the job system: every part is built here, once, and handed down.

    Front doors take what they need from here (``manager``, ``streams``, ``requests``, ``voices``,
    ``storage``, ``scheduler``) rather than reaching through one part into another.
    """

    def __init__(
        self,
        settings: Settings,
        voices: VoiceResolver,
        storage: OutputStorage,
        *,
        synthesizer: Synthesizer | None = None,
        stream_observer: StreamObserver | None = None,
        store: JobStore | None = None,
        encoder: Encoder | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.voices = voices
        self.storage = storage
        self.scheduler = EngineScheduler(
            settings.queue_max, synthesizer, concurrency=settings.engine_concurrency
        )
        self.requests = RequestBuilder(settings, voices, load_lexicons(settings))
        store = store or JobStore(settings.job_database_url, clock=clock)
        owner = settings.instance_id or default_instance_id()
        tracker = JobTracker(
            store,
            EventHub(),
            clock,
            owner=owner if store.shared else None,
            poll_seconds=settings.job_poll_seconds,
        )
        background = BackgroundTasks()
        runner = JobRunner(
            tracker,
            ProgressWriter(tracker, settings.progress_persist_seconds, background.spawn),
            self.scheduler,
            voices,
            storage,
            encoder or default_encoder,
            self.requests.server_lexicon,
        )
        sharing = self._work_sharing(settings, store, tracker, storage, owner) if store.shared else None

        async def run_job(item: WorkItem) -> None:
            try:
                await runner.run(item)
            finally:
                if sharing is not None:
                    sharing.wake()  # room for the next job: claim one

        self.scheduler.register(JOB_KIND_TTS, run_job, interrupt=runner.interrupt)
        self.manager = JobManager(
            settings,
            self.scheduler,
            tracker,
            self.requests,
            OutputRetention(tracker, storage, settings),
            background,
            sharing,
        )
        self.streams = StreamService(
            self.scheduler,
            self.requests,
            voices,
            max_buffered=settings.stream_buffer_pieces,
            stall_timeout=settings.stream_stall_timeout_seconds,
            observer=stream_observer,
        )
        self.scheduler.register(WORK_KIND_STREAM, self.streams.run, interrupt=self.streams.interrupt)

        self.stopping = asyncio.Event()
        """Set when draining begins: SSE and WebSocket handlers send their last frame and end."""
        self._drain: asyncio.Future[None] | None = None
        self._connections = 0
        self._no_connections = asyncio.Event()
        self._no_connections.set()

    def _work_sharing(
        self, settings: Settings, store: JobStore, tracker: JobTracker, storage: OutputStorage, owner: str
    ) -> WorkSharing:
        """A store shared by several instances (PostgreSQL): claims, leases, kills across them."""
        if not storage.shared:
            raise StorageConfigError(
                "a PostgreSQL job store (F5VI_DATABASE_URL) is shared by several instances, so outputs"
                " must be in a bucket every instance reaches: set F5VI_S3_BUCKET, F5VI_S3_ENDPOINT_URL,"
                " F5VI_S3_ACCESS_KEY_ID and F5VI_S3_SECRET_ACCESS_KEY (docs/deployment.md)"
            )
        return WorkSharing(
            store,
            tracker,
            self.scheduler,
            tracker.events,
            owner=owner,
            lease_seconds=settings.job_lease_seconds,
            poll_seconds=settings.job_poll_seconds,
            max_attempts=settings.job_max_attempts,
            listen_url=settings.job_database_url if settings.job_notify else None,
        )

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncio.Event]:
        """Hold a long-lived client (SSE, WebSocket) open; the drain waits for it to say goodbye.

        Yields :attr:`stopping`: when it is set, send the last frame and leave the block.
        """
        self._connections += 1
        self._no_connections.clear()
        try:
            yield self.stopping
        finally:
            self._connections -= 1
            if self._connections == 0:
                self._no_connections.set()

    async def start(self) -> None:
        self.stopping.clear()
        self._drain = None
        await self.manager.start()
        self.scheduler.start()

    def begin_shutdown(self) -> asyncio.Future[None]:
        """Start draining now (idempotent); the future is done once the engine has stopped."""
        if self._drain is None:
            self.stopping.set()
            self.manager.stop_accepting()
            self._drain = asyncio.ensure_future(self._drain_now(self.settings.shutdown_grace_seconds))
        return self._drain

    async def _drain_now(self, timeout: float) -> None:
        await self.streams.close_all()
        await asyncio.gather(self.scheduler.stop(timeout=timeout), self._clients_gone(timeout))

    async def _clients_gone(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._no_connections.wait(), timeout)

    async def stop(self) -> None:
        await self.begin_shutdown()
        await self.manager.close()

    async def __aenter__(self) -> JobRuntime:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
