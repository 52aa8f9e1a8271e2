"""What this process knows of jobs: written to the store first, then remembered, then announced.

:class:`JobTracker` is the one path by which a job changes: :meth:`JobTracker.transition` persists
the change (SQLite, on one database thread so a slow disk never stalls the event loop), then updates
the in-memory snapshot, then publishes it to subscribers — so whatever a client has seen survives a
crash. It keeps one :class:`ActiveJob` per queued or running job (its cancel token, why it was
cancelled, progress not yet on disk) and drops it in one place when the job ends.

A job's end that the store cannot take (disk or database full, database gone) is not lost: it is
kept as an *unwritten outcome*, the job stays active (so a kill still reaches it), and one
background task writes it as soon as the store accepts writes again (a kill in between replaces it
and tries at once). Memory never shows an end the store does not have, and the store is never left
saying "running" for a job this process has finished with.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

from f5vi.engine.types import CancelToken
from f5vi.errors import InsufficientStorageError, is_out_of_space
from f5vi.jobs.background import log_task_failure
from f5vi.jobs.errors import UnknownJobError
from f5vi.jobs.events import EventHub
from f5vi.jobs.models import Job, is_valid_job_id
from f5vi.jobs.states import InvalidTransitionError, JobState
from f5vi.jobs.store import JobStore

T = TypeVar("T")
logger = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 5.0
"""How often an unwritten outcome is tried again (doubling from the first to the last)."""

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
    progress_write_failed: bool = False
    """The last progress write failed (logged once, until one succeeds again)."""

    def cancel(self, reason: CancelReason) -> None:
        """Stop the job at the next ODE step; a client's cancel wins over a shutdown's."""
        if self.cancel_reason is None or reason is CancelReason.USER:
            self.cancel_reason = reason
        self.token.cancel()


@dataclass
class _Unwritten:
    """A job's end the store could not take yet."""

    target: JobState
    expected: set[JobState]
    changes: dict[str, Any]


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
        self._unwritten: dict[str, _Unwritten] = {}
        self._reconciler: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ database thread
    async def open(self) -> None:
        self._db_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="f5vi-jobdb")
        await self.db(self.store.open)

    async def close(self) -> None:
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciler
            self._reconciler = None
        if self._unwritten and not await self.write_unwritten():
            logger.error(
                "closing with %d job end(s) the store did not take (%s); they run again at the next start",
                len(self._unwritten),
                ", ".join(self._unwritten),
            )
        await self.db(self.store.close)
        if self._db_pool is not None:
            self._db_pool.shutdown(wait=True)
            self._db_pool = None

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store (or storage) call on the single database thread, FIFO, off the event loop.

        A full disk or database is :class:`~f5vi.errors.InsufficientStorageError` (507), not a 500.
        """
        try:
            if self._db_pool is None:
                return fn(*args, **kwargs)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._db_pool, functools.partial(fn, *args, **kwargs))
        except Exception as exc:
            if is_out_of_space(exc):
                raise InsufficientStorageError(
                    "the job database has no space left (the disk of F5VI_DATA_DIR is full); "
                    "free space and retry"
                ) from exc
            raise

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
        defer: bool = True,
        **changes: Any,
    ) -> Job:
        """End a job (terminal ``state`` with its error code and message) and release it.

        If the store cannot take the write, the end is kept and written as soon as it can be (the
        job stays active meanwhile; the returned snapshot is still the old state) — unless ``defer``
        is False: then the error is raised and the job stays active for its caller to end otherwise.
        A transition the store refuses (the job moved on) releases the job and raises.
        """
        changes.update(error_code=code, error_message=message)
        try:
            job = await self.transition(job_id, state, expected=expected, **dict(changes))
        except (InvalidTransitionError, UnknownJobError):
            self.release(job_id)
            raise
        except Exception as exc:
            if not defer:
                raise
            logger.error(
                "job %s: the store did not take its end (%s: %s); writing it as soon as it can",
                job_id,
                state.value,
                exc,
            )
            self._keep_unwritten(job_id, _Unwritten(state, set(expected), changes))
            known = self._snapshots.get(job_id)
            if known is None:
                raise
            return known
        self.release(job_id)
        return job

    # ------------------------------------------------------------------ ends the store has not taken yet
    def has_unwritten(self, job_id: str) -> bool:
        return job_id in self._unwritten

    @property
    def unwritten(self) -> list[str]:
        """Jobs whose end waits for the store to accept writes again."""
        return list(self._unwritten)

    async def replace_unwritten(self, job_id: str, state: JobState, code: str, message: str) -> Job | None:
        """A kill of a job whose end is not written yet: it ends ``state`` instead, written now if
        the store takes it (else with the other ends). Returns the job as it is now."""
        outcome = self._unwritten.get(job_id)
        if outcome is None:
            return self._snapshots.get(job_id)
        outcome.target = state
        outcome.changes = {"error_code": code, "error_message": message, "stage": None, "eta_seconds": None}
        await self.write_unwritten(job_id)
        return self._snapshots.get(job_id)

    def _keep_unwritten(self, job_id: str, outcome: _Unwritten) -> None:
        self._unwritten[job_id] = outcome
        if self._reconciler is None or self._reconciler.done():
            self._reconciler = asyncio.create_task(self._reconcile(), name="f5vi-job-reconcile")
            self._reconciler.add_done_callback(log_task_failure)

    async def _reconcile(self) -> None:
        delay = RETRY_FIRST_SECONDS
        while self._unwritten:
            await asyncio.sleep(delay)
            delay = RETRY_FIRST_SECONDS if await self.write_unwritten() else min(delay * 2, RETRY_MAX_SECONDS)

    async def write_unwritten(self, job_id: str | None = None) -> bool:
        """Try to write the kept ends (of ``job_id`` only, or all, oldest first); True once none is left."""
        for key in [job_id] if job_id is not None else list(self._unwritten):
            outcome = self._unwritten.get(key)
            if outcome is None:
                continue
            try:
                await self.transition(key, outcome.target, expected=outcome.expected, **dict(outcome.changes))
            except (InvalidTransitionError, UnknownJobError):
                logger.warning("job %s moved on in the store; its kept end is dropped", key)
                self._unwritten.pop(key, None)
                with contextlib.suppress(Exception):
                    await self.reload(key)
                self._end_active(key)
            except Exception as exc:
                logger.warning("job %s: the store still does not take its end (%s)", key, exc)
                return False
            else:
                self._unwritten.pop(key, None)
                logger.info("job %s: its end (%s) is written now", key, outcome.target.value)
                self.release(key)
        return not self._unwritten

    def _end_active(self, job_id: str) -> None:
        active = self._active.pop(job_id, None)
        if active is not None:
            active.done.set()

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
