"""JobManager: the durable job service — submit, look up, wait, cancel, confirm downloads.

Jobs run as work of kind ``tts`` on the one engine queue (:class:`~f5vi.jobs.scheduler.EngineScheduler`)
through :class:`~f5vi.jobs.runner.JobRunner`; every state change goes through
:class:`~f5vi.jobs.tracker.JobTracker`, which writes it to the :class:`~f5vi.jobs.store.JobStore`
before it is published, so what a client saw survives a crash.

The manager knows nothing about HTTP: the FastAPI app and the RunPod worker both drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

from f5vi.config import Settings
from f5vi.formats import FORMATS
from f5vi.jobs.background import BackgroundTasks
from f5vi.jobs.errors import (
    InvalidConfirmationTokenError,
    InvalidJobIdError,
    JobConflictError,
    JobFinishedError,
    JobNotSucceededError,
    ServiceUnavailableError,
    UnknownJobError,
)
from f5vi.jobs.events import Subscription
from f5vi.jobs.follow import DEFAULT_IDLE_SECONDS, follow_job
from f5vi.jobs.models import JOB_KIND_TTS, Job, JobRequest, is_valid_job_id
from f5vi.jobs.queue import WorkItem
from f5vi.jobs.requests import RequestBuilder, TTSInput
from f5vi.jobs.retention import OutputRetention
from f5vi.jobs.scheduler import EngineScheduler
from f5vi.jobs.sharing import WorkSharing
from f5vi.jobs.states import InvalidTransitionError, JobState
from f5vi.jobs.store import DuplicateJobError, JobStore
from f5vi.jobs.tracker import CancelReason, JobTracker
from f5vi.storage import make_output_filename

logger = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY_CHARS = 256


class JobManager:
    """Durable jobs on the engine queue of ``scheduler`` (which may still be waiting for its model)."""

    def __init__(
        self,
        settings: Settings,
        scheduler: EngineScheduler,
        tracker: JobTracker,
        requests: RequestBuilder,
        retention: OutputRetention,
        background: BackgroundTasks,
        sharing: WorkSharing | None = None,
    ) -> None:
        """The parts come from :class:`~f5vi.jobs.runtime.JobRuntime`, which wires the job system."""
        self.settings = settings
        self.scheduler = scheduler
        self.requests = requests
        self._tracker = tracker
        self._retention = retention
        self._background = background
        self.sharing = sharing
        self._retention_task: asyncio.Task[None] | None = None
        self._submit_lock = asyncio.Lock()
        self._accepting = False
        self._started = False

    @property
    def store(self) -> JobStore:
        return self._tracker.store

    # ================================================================== lifecycle
    async def start(self) -> None:
        """Open the store, repair it after a crash and queue the jobs waiting in it (oldest first)."""
        if self._started:
            return
        tracker = self._tracker
        await tracker.open()
        if self.sharing is not None:
            await self._start_shared()
            return
        report = await tracker.db(self.store.recover, max_attempts=self.settings.job_max_attempts)
        for job_id in report.requeued:
            logger.warning("job %s was running when the server stopped; it will run again", job_id)
        for job_id in report.failed:
            logger.error("job %s was interrupted too often; marked failed", job_id)
        removed = await tracker.db(self._retention.storage.remove_partials, older_than_seconds=0.0)
        if removed:
            logger.info("removed %d partial output file(s) left by an interrupted write", removed)
        for job_id in report.queued:
            job = await tracker.db(self.store.get, job_id)
            if job is not None and job.state is JobState.QUEUED:
                tracker.activate(job)
                self.scheduler.enqueue(WorkItem(kind=job.kind, key=job.id), force=True)
        if report.queued:
            logger.info("resuming %d queued job(s)", len(report.queued))
        self._accepting = True
        self._started = True
        self._start_retention()

    async def _start_shared(self) -> None:
        """A shared store: nothing to recover (others may be running jobs); claim work from now on."""
        assert self.sharing is not None
        logger.info(
            "job store shared through PostgreSQL; this instance is %r (lease %.0f s)",
            self.sharing.owner,
            self.settings.job_lease_seconds,
        )
        self.sharing.start()
        self._accepting = True
        self._started = True
        self._start_retention()

    def _start_retention(self) -> None:
        if self.settings.cleanup_interval_seconds > 0:
            self._retention_task = asyncio.create_task(
                self._retention.run_forever(self.settings.cleanup_interval_seconds), name="f5vi-retention"
            )

    def stop_accepting(self) -> None:
        """Refuse new jobs (503) from now on; what is queued stays queued (shared: claim no more)."""
        self._accepting = False
        if self.sharing is not None:
            self.sharing.claiming = False

    async def close(self) -> None:
        """After the engine stopped: end background work and close the store."""
        if not self._started:
            return
        self._accepting = False
        if self.sharing is not None:
            await self.sharing.stop()
        if self._retention_task is not None:
            self._retention_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._retention_task
            self._retention_task = None
        await self._background.wait()
        await self._tracker.close()
        self._started = False

    # ================================================================== submit
    async def submit(
        self, request: TTSInput, *, job_id: str | None = None, idempotency_key: str | None = None
    ) -> Job:
        job, _ = await self.submit_or_get(request, job_id=job_id, idempotency_key=idempotency_key)
        return job

    async def submit_or_get(
        self, request: TTSInput, *, job_id: str | None = None, idempotency_key: str | None = None
    ) -> tuple[Job, bool]:
        """Queue a TTS job; returns ``(job, created)``.

        A ``job_id`` (or ``idempotency_key``) seen before returns the existing job with
        ``created=False`` when the request is the same, and raises :class:`JobConflictError`
        otherwise. Voice and parameter errors raise the typed voice/engine errors.
        """
        if job_id is not None and not is_valid_job_id(job_id):
            raise InvalidJobIdError(
                "job_id must be 1-128 characters: letters, digits, '_' or '-', "
                "starting with a letter or digit"
            )
        if idempotency_key is not None and not (0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_CHARS):
            raise InvalidJobIdError(f"idempotency key must be 1-{MAX_IDEMPOTENCY_KEY_CHARS} characters")
        self._check_accepting()
        prepared = await self.requests.prepare(request)
        job_request = prepared.request
        existing = await self._find_existing(job_id, idempotency_key)
        if existing is not None:
            return self._replay(existing, job_request), False
        async with self._submit_lock:
            self._check_accepting()
            self.scheduler.check_room()
            new_id = job_id or f"job_{secrets.token_hex(12)}"
            try:
                job = await self._tracker.db(
                    self.store.create,
                    job_id=new_id,
                    kind=JOB_KIND_TTS,
                    request=job_request,
                    output_filename=make_output_filename(new_id, FORMATS[job_request.format].extension),
                    confirm_token=secrets.token_urlsafe(24),
                    idempotency_key=idempotency_key,
                )
            except DuplicateJobError as exc:
                return self._replay(exc.existing, job_request), False
            if self.sharing is not None:
                self._tracker.remember(job)
                self.sharing.wake()  # whichever instance has room claims it (NOTIFY wakes the others)
            else:
                self._tracker.activate(job)
                self.scheduler.enqueue(WorkItem(kind=JOB_KIND_TTS, key=job.id), force=True)
        logger.info("job %s queued (voice=%s, %d chars)", job.id, job_request.voice_id, len(job_request.text))
        self._tracker.events.publish(job)
        return job, True

    def _check_accepting(self) -> None:
        if not self._accepting:
            raise ServiceUnavailableError("the server is not accepting jobs (starting or shutting down)")
        self.scheduler.check_not_failed()

    async def _find_existing(self, job_id: str | None, key: str | None) -> Job | None:
        if key is not None:
            found = await self._tracker.db(self.store.get_by_idempotency_key, key)
            if found is not None:
                return found
        if job_id is not None:
            return await self._tracker.db(self.store.get, job_id)
        return None

    def _replay(self, existing: Job, request: JobRequest) -> Job:
        if existing.request_hash != request.fingerprint():
            raise JobConflictError(existing)
        if self.sharing is not None and self._tracker.active(existing.id) is None:
            return existing  # fresh from the shared table; a snapshot here may be behind
        return self._tracker.snapshot(existing.id) or existing

    # ================================================================== read
    async def get(self, job_id: str) -> Job | None:
        """The latest state of a job (in-memory progress for active jobs), or None if unknown."""
        return await self._tracker.get(job_id)

    def peek(self, job_id: str) -> Job | None:
        """The in-memory view only (no database read): active and recently finished jobs."""
        return self._tracker.snapshot(job_id)

    async def find_by_output(self, filename: str) -> Job | None:
        return await self._tracker.db(self.store.find_by_output, filename)

    def follow(
        self, job_id: str, *, idle_seconds: float = DEFAULT_IDLE_SECONDS, stop: asyncio.Event | None = None
    ) -> AsyncIterator[Job | None]:
        """The job's snapshots until it ends (``None`` at each idle interval); see :func:`follow_job`."""
        return follow_job(
            job_id, read=self.get, subscribe=self.subscribe, idle_seconds=idle_seconds, stop=stop
        )

    async def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Wait until the job is terminal; raises TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            async for job in self.follow(job_id):
                if job is not None and job.is_terminal:
                    return job
        raise AssertionError("follow() ends only with a terminal snapshot when not stopped")

    def subscribe(self, job_id: str | None = None) -> Subscription:
        """Job snapshots as they change (use as a context manager; iterate or ``await get()``)."""
        return self._tracker.events.subscribe(job_id)

    async def counts(self) -> dict[JobState, int]:
        return await self._tracker.db(self.store.counts)

    # ================================================================== queue facts
    def queue_position(self, job_id: str) -> int | None:
        return self.scheduler.queue.position(job_id)

    @property
    def running_jobs(self) -> list[Job]:
        """The jobs the engine runs now, oldest first (several share its batches)."""
        jobs = (self._tracker.snapshot(w.key) for w in self.scheduler.running if w.kind == JOB_KIND_TTS)
        return [job for job in jobs if job is not None]

    @property
    def current_job(self) -> Job | None:
        """The oldest running job (None while the engine runs only other work, or nothing)."""
        running = self.running_jobs
        return running[0] if running else None

    def estimated_wait_seconds(self, job_id: str) -> float | None:
        """Rough time until a queued job starts: the work ahead of it, ``concurrency`` at a time."""
        position = self.queue_position(job_id)
        average = self.scheduler.average_work_seconds
        if position is None or average is None:
            return None
        etas = [job.eta_seconds for job in self.running_jobs if job.eta_seconds is not None]
        soonest = min(etas) if etas else 0.0
        return soonest + (position // self.scheduler.concurrency) * average

    def is_cancel_requested(self, job_id: str) -> bool:
        active = self._tracker.active(job_id)
        return active is not None and active.cancel_reason is CancelReason.USER

    # ================================================================== cancel
    async def cancel(self, job_id: str, *, wait_seconds: float = 10.0) -> Job:
        """Cancel a queued job at once, or a running one within one ODE step.

        Returns the job: ``cancelled``, or still ``running`` if the engine did not stop within
        ``wait_seconds`` (it will). Raises :class:`JobFinishedError` for a finished job.
        """
        tracker = self._tracker
        job = await self.get(job_id)
        if job is None:
            raise UnknownJobError(job_id)
        if job.is_terminal:
            raise JobFinishedError(job)
        if self.sharing is not None and tracker.active(job_id) is None:
            return await self._cancel_elsewhere(job_id, wait_seconds)
        if self.scheduler.queue.remove(job_id) is not None:
            try:
                job = await tracker.finish(
                    job_id,
                    JobState.CANCELLED,
                    "cancelled",
                    "cancelled by request before it started",
                    expected={JobState.QUEUED},
                )
            except InvalidTransitionError:
                job = await tracker.reload(job_id)
                if job.is_terminal and job.state is not JobState.CANCELLED:
                    raise JobFinishedError(job) from None
            logger.info("job %s cancelled while queued", job_id)
            return job
        if tracker.has_unwritten(job_id):  # it ended, but the store has not taken that yet
            current = await tracker.replace_unwritten(
                job_id, JobState.CANCELLED, "cancelled", "cancelled by request while running"
            )
            return current or job
        # Running (or just being picked up): the runner ends it.
        active = tracker.active(job_id) or tracker.activate(job)
        active.cancel(CancelReason.USER)
        with contextlib.suppress(TimeoutError):
            await tracker.wait_terminal(job_id, wait_seconds)
        job = await tracker.reload(job_id)
        if job.is_terminal and job.state is not JobState.CANCELLED:
            raise JobFinishedError(job)
        return job

    async def _cancel_elsewhere(self, job_id: str, wait_seconds: float) -> Job:
        """Shared store, a job this instance does not hold: cancel it if nobody does, else ask its
        owner (it stops at its next ODE step) and wait up to ``wait_seconds`` for it to end."""
        tracker = self._tracker
        job = await tracker.db(self.store.request_cancel, job_id)
        tracker.show(job)
        if not job.is_terminal:
            with contextlib.suppress(TimeoutError):
                await tracker.wait_terminal(job_id, wait_seconds)
            job = await tracker.reload(job_id)
        if job.is_terminal and job.state is not JobState.CANCELLED:
            raise JobFinishedError(job)
        if job.state is JobState.CANCELLED:
            logger.info("job %s cancelled (asked here, held by %s)", job_id, job.owner or "nobody")
        return job

    # ================================================================== downloads
    async def confirm_download(self, job_id: str, token: str | None) -> Job:
        job = await self.get(job_id)
        if job is None:
            raise UnknownJobError(job_id)
        if not token or not hmac.compare_digest(token.encode(), job.confirm_token.encode()):
            raise InvalidConfirmationTokenError()
        if job.state is not JobState.SUCCEEDED:
            raise JobNotSucceededError(job)
        job = await self._tracker.db(self.store.confirm_download, job_id)
        self._tracker.update(job)
        return job

    async def check_download(self, job_id: str) -> Job:
        job = await self.get(job_id)
        if job is None:
            raise UnknownJobError(job_id)
        return job

    async def delivery_record(self, job_id: str) -> dict[str, Any] | None:
        """What a front door recorded about handing this job's result over (e.g. its webhook)."""
        return await self._tracker.db(self.store.get_delivery, job_id)

    async def save_delivery_record(
        self, job_id: str, record: dict[str, Any], *, replace: bool = True
    ) -> bool:
        return await self._tracker.db(self.store.put_delivery, job_id, record, replace=replace)

    async def cleanup_outputs(self, *, now: float | None = None) -> int:
        """Delete outputs past retention (sooner once confirmed), stray files and old records."""
        return await self._retention.run_once(now=now)
