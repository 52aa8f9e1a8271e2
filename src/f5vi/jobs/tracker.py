"""What this process knows of jobs: written to the store first, then remembered, then announced.

:class:`JobTracker` is the one path by which a job changes: :meth:`JobTracker.transition` persists
the change (SQLite, on one database thread so a slow disk never stalls the event loop), then updates
the in-memory snapshot, then publishes it to subscribers — so whatever a client has seen survives a
crash. It keeps one :class:`ActiveJob` per queued or running job (its cancel token, why it was
cancelled, progress not yet on disk) and drops it in one place when the job ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

from f5vi.engine.types import CancelToken
from f5vi.jobs.errors import UnknownJobError
from f5vi.jobs.events import EventHub
from f5vi.jobs.models import Job, is_valid_job_id
from f5vi.jobs.states import JobState
from f5vi.jobs.store import JobStore

T = TypeVar("T")

MAX_FINISHED_SNAPSHOTS = 256
"""Finished jobs kept in memory (active ones always are); older ones are read from the store."""


class CancelReason(StrEnum):
    USER = "user"
    """A client asked (kill, RunPod cancel, timeout): the job ends ``cancelled``."""
    SHUTDOWN = "shutdown"
    """The server is stopping: the job goes back to the queue, not counted as an attempt."""
    LEASE_LOST = "lease_lost"
    """Another instance took the job over (shared store): stop and write nothing."""


@dataclass
class ActiveJob:
    """What this process holds for a job that is queued or running."""

    token: CancelToken = field(default_factory=CancelToken)
    cancel_reason: CancelReason | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the job reaches a terminal state."""
    pending: Job | None = None
    """Progress not yet on disk (so not visible yet); see :mod:`f5vi.jobs.progress`."""
    last_flush: float = 0.0
    flushing: bool = False

    def cancel(self, reason: CancelReason) -> None:
        """Stop the job at the next ODE step; a client's cancel wins over a shutdown's."""
        if self.cancel_reason is None or reason is CancelReason.USER:
            self.cancel_reason = reason
        self.token.cancel()


class JobTracker:
    def __init__(
        self,
        store: JobStore,
        events: EventHub,
        clock: Callable[[], float],
        *,
        owner: str | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.events = events
        self.clock = clock
        self.owner = owner
        """This instance's name on a shared store: every change it writes requires owning the job."""
        self.poll_seconds = poll_seconds
        self._db_pool: ThreadPoolExecutor | None = None
        self._snapshots: OrderedDict[str, Job] = OrderedDict()
        self._active: dict[str, ActiveJob] = {}

    # ------------------------------------------------------------------ database thread
    async def open(self) -> None:
        self._db_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="f5vi-jobdb")
        await self.db(self.store.open)

    async def close(self) -> None:
        await self.db(self.store.close)
        if self._db_pool is not None:
            self._db_pool.shutdown(wait=True)
            self._db_pool = None

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store (or storage) call on the single database thread, FIFO, off the event loop."""
        if self._db_pool is None:
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_pool, functools.partial(fn, *args, **kwargs))

    # ------------------------------------------------------------------ active jobs
    def activate(self, job: Job) -> ActiveJob:
        """Remember a queued job and give it a fresh cancel token (a new start after a stop)."""
        self.remember(job)
        active = self._active[job.id] = ActiveJob()
        return active

    def active(self, job_id: str) -> ActiveJob | None:
        return self._active.get(job_id)

    def active_ids(self) -> list[str]:
        return list(self._active)

    def release(self, job_id: str) -> None:
        """The job is no longer queued or running in this process."""
        self._active.pop(job_id, None)

    # ------------------------------------------------------------------ reading
    def snapshot(self, job_id: str) -> Job | None:
        """The in-memory view (active jobs are always there, with progress ahead of the disk)."""
        return self._snapshots.get(job_id)

    async def get(self, job_id: str) -> Job | None:
        """Memory for jobs this process runs (or, alone on its store, knows); else the database
        (on a shared store another instance may have changed it since)."""
        job = self._snapshots.get(job_id)
        if not is_valid_job_id(job_id):
            return job
        if job is not None and (self.owner is None or job_id in self._active):
            return job
        return await self.db(self.store.get, job_id)

    async def reload(self, job_id: str) -> Job:
        job = await self.db(self.store.get, job_id)
        if job is None:
            raise UnknownJobError(job_id)
        self.update(job)
        return job

    async def wait_terminal(self, job_id: str, timeout: float | None) -> None:
        active = self._active.get(job_id)
        current = self._snapshots.get(job_id)
        if self.owner is not None:
            # Shared store: the job may run elsewhere, or move elsewhere (a lost lease) while we wait.
            await asyncio.wait_for(self._wait_elsewhere(job_id), timeout)
            return
        if active is None or current is None or current.is_terminal:
            return
        await asyncio.wait_for(active.done.wait(), timeout)

    async def _wait_elsewhere(self, job_id: str) -> None:
        """Until the row is terminal: woken by the job's updates (ours, or another instance's through
        NOTIFY), and re-reading the row at least every ``poll_seconds``."""
        with self.events.subscribe(job_id) as updates:
            while True:
                job = await self.db(self.store.get, job_id)
                if job is None or job.is_terminal:
                    return
                with contextlib.suppress(TimeoutError):
                    if (await updates.get(self.poll_seconds)).is_terminal:
                        return

    # ------------------------------------------------------------------ changing
    async def transition(
        self, job_id: str, target: JobState, *, expected: set[JobState] | None = None, **changes: Any
    ) -> Job:
        """Persist, then update memory, then publish (in that order)."""
        known = self._snapshots.get(job_id)
        if known is not None:
            changes["progress"] = max(float(changes.get("progress", 0.0)), known.progress)
        job = await self.db(
            self.store.transition, job_id, target, expected=expected, owner=self.owner, **changes
        )
        self.update(job)
        self.events.publish(job)
        if job.is_terminal:
            active = self._active.pop(job_id, None)
            if active is not None:
                active.done.set()
        return job

    async def finish(
        self,
        job_id: str,
        state: JobState,
        code: str | None,
        message: str | None,
        *,
        expected: set[JobState],
        **changes: Any,
    ) -> Job:
        """End a job (terminal ``state`` with its error code and message); it is released either way."""
        try:
            return await self.transition(
                job_id, state, expected=expected, error_code=code, error_message=message, **changes
            )
        finally:
            self.release(job_id)

    def show(self, job: Job) -> None:
        """Make a persisted change visible: memory first, then subscribers."""
        self.update(job)
        self.events.publish(job)

    def update(self, job: Job) -> None:
        """Keep the in-memory copy; an active job's progress in memory may be ahead of the database."""
        previous = self._snapshots.get(job.id)
        if previous is not None and previous.state is job.state and not job.is_terminal:
            job = replace(job, progress=max(job.progress, previous.progress))
        self.remember(job)

    def remember(self, job: Job) -> None:
        self._snapshots[job.id] = job
        self._snapshots.move_to_end(job.id)
        finished = [k for k, v in self._snapshots.items() if v.is_terminal]
        for key in finished[: max(0, len(finished) - MAX_FINISHED_SNAPSHOTS)]:
            del self._snapshots[key]

    def forget(self, job_id: str) -> None:
        """The record was purged from the store."""
        self._snapshots.pop(job_id, None)
