"""Several instances, one PostgreSQL job table: claiming work, holding leases, following others' jobs.

With a shared store (``F5VI_DATABASE_URL=postgresql://...``) a submitted job is only a ``queued`` row;
no instance owns it yet. :class:`WorkSharing` is each instance's side of the protocol:

- **claim**: when the engine has room (``concurrency`` minus what runs and waits locally) it claims
  that many jobs (:meth:`~f5vi.jobs.store.JobStore.claim`, ``FOR UPDATE SKIP LOCKED``) and puts them
  on its local engine queue;
- **lease**: every third of ``job_lease_seconds`` it renews the lease on what it holds. A job it no
  longer holds (it stalled longer than the lease and another instance took the job over) is stopped
  at its next ODE step without writing anything: only the owner may change a job, so it never
  completes twice. A job whose owner died is taken over once its lease expires (the start counts as
  an attempt; ``job_max_attempts`` starts and it fails ``interrupted``) — at-least-once execution;
- **kill**: a kill asked on another instance is a ``cancel_requested_at`` stamp; the owner hears it
  (NOTIFY, or at the latest at its next renewal) and stops the run at its next ODE step;
- **follow**: progress and state of jobs that run elsewhere reach this instance's subscribers (SSE,
  waits) by re-reading the row when a ``NOTIFY`` names it, and at least every ``job_poll_seconds``.

``LISTEN/NOTIFY`` makes all of this immediate; polling every ``job_poll_seconds`` is the bound when a
notification is lost (the listening connection dropped). bench/RESULTS.md has the measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from f5vi.jobs.events import EventHub
from f5vi.jobs.models import Job
from f5vi.jobs.pg_database import NOTIFY_CHANNEL
from f5vi.jobs.queue import WorkItem
from f5vi.jobs.scheduler import EngineScheduler
from f5vi.jobs.states import InvalidTransitionError, JobState
from f5vi.jobs.store import JobStore
from f5vi.jobs.tracker import CancelReason, JobTracker

logger = logging.getLogger(__name__)


def default_instance_id() -> str:
    """``host-pid-random``: unique per process, so a restarted instance never inherits old leases."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class WorkSharing:
    def __init__(
        self,
        store: JobStore,
        tracker: JobTracker,
        scheduler: EngineScheduler,
        events: EventHub,
        *,
        owner: str,
        lease_seconds: float,
        poll_seconds: float,
        max_attempts: int,
        listen_url: str | None,
    ) -> None:
        self.store = store
        self.tracker = tracker
        self.scheduler = scheduler
        self.events = events
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        self.listen_url = listen_url
        self.claiming = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: _Listener | None = None
        self._next_renewal = 0.0
        self._cancels: set[str] = set()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.claiming = True
        if self.listen_url is not None:
            self._listener = _Listener(self.listen_url, asyncio.get_running_loop(), self._on_notify)
            self._listener.start()
        self._task = asyncio.create_task(self._loop(), name="f5vi-work-sharing")

    async def stop(self) -> None:
        """Stop claiming and renewing; give back the claimed jobs that have not started."""
        self.claiming = False
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        queued = self.scheduler.queue.keys()
        waiting = [key for key in queued if self.tracker.active(key) is not None]
        if waiting:
            released = await self.tracker.db(self.store.release, self.owner, waiting)
            logger.info("gave back %d claimed job(s) that had not started", released)
        for key in waiting:
            self.scheduler.queue.remove(key)
            self.tracker.release(key)

    def wake(self) -> None:
        """Look for work (and changes) now rather than at the next poll."""
        self._wake.set()

    # ------------------------------------------------------------------ the loop
    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()
            try:
                await self.tick()
            except Exception:
                logger.exception("work sharing: one round failed (the database may be unreachable)")

    async def tick(self) -> None:
        """One round: renew leases when due, apply kills, claim work, refresh followed jobs."""
        if time.monotonic() >= self._next_renewal or self._cancels:
            self._cancels.clear()
            await self._renew()
        if self.claiming:
            await self._claim()
        await self._refresh_followed()

    async def _renew(self) -> None:
        self._next_renewal = time.monotonic() + self.lease_seconds / 3
        held = self.tracker.active_ids()
        report = await self.tracker.db(self.store.renew, self.owner, held, lease_seconds=self.lease_seconds)
        owned = set(report.owned)
        for job_id in held:
            if job_id not in owned:
                self._lost(job_id)
        for job_id in report.cancel_requested:
            await self._kill(job_id)

    def _lost(self, job_id: str) -> None:
        """Another instance holds the job now: stop our run and forget it; write nothing."""
        logger.warning("job %s: lease lost (another instance took it over); stopping this run", job_id)
        if self.scheduler.queue.remove(job_id) is not None:
            self.tracker.release(job_id)
            return
        active = self.tracker.active(job_id)
        if active is not None:
            active.cancel(CancelReason.LEASE_LOST)

    async def _kill(self, job_id: str) -> None:
        """A kill asked on another instance, for a job this one holds."""
        active = self.tracker.active(job_id)
        if active is None:
            return
        if self.scheduler.queue.remove(job_id) is not None:
            with contextlib.suppress(InvalidTransitionError):
                await self.tracker.finish(
                    job_id,
                    JobState.CANCELLED,
                    "cancelled",
                    "cancelled by request before it started",
                    expected={JobState.QUEUED},
                )
            return
        logger.info("job %s: kill asked on another instance; stopping at the next step", job_id)
        active.cancel(CancelReason.USER)

    def capacity(self) -> int:
        """How many more jobs this instance's engine can take now (0 until its model is loaded)."""
        if self.scheduler.synthesizer is None:
            return 0
        return max(0, self.scheduler.concurrency - len(self.scheduler.running) - len(self.scheduler.queue))

    async def _claim(self) -> None:
        limit = self.capacity()
        if limit <= 0:
            return
        report = await self.tracker.db(
            self.store.claim,
            self.owner,
            limit=limit,
            lease_seconds=self.lease_seconds,
            max_attempts=self.max_attempts,
        )
        for job in report.ended:
            self.tracker.show(job)
        for job in report.claimed:
            self.tracker.activate(job)
            self.tracker.events.publish(job)
            self.scheduler.enqueue(WorkItem(kind=job.kind, key=job.id), force=True)
        if report.claimed:
            logger.info("claimed %d job(s): %s", len(report.claimed), ", ".join(j.id for j in report.claimed))

    async def _refresh_followed(self) -> None:
        """Re-read the jobs someone here follows that run elsewhere; show what changed."""
        followed = {job_id for job_id in self.events.followed() if self.tracker.active(job_id) is None}
        for job_id in sorted(followed):
            job = await self.tracker.db(self.store.get, job_id)
            if job is not None:
                self._show_if_changed(job)

    def _show_if_changed(self, job: Job) -> None:
        known = self.tracker.snapshot(job.id)
        if known is None or _visible(known) != _visible(job):
            self.tracker.show(job)

    # ------------------------------------------------------------------ notifications
    def _on_notify(self, payload: str) -> None:
        """On the event loop: ``<event>:<job id>`` from another (or this) instance's commit."""
        event, _, job_id = payload.partition(":")
        if event == "new":
            self.wake()
        elif event == "cancel":
            if self.tracker.active(job_id) is not None:
                self._cancels.add(job_id)
                self.wake()
        elif event == "change" and self.tracker.active(job_id) is None and job_id in self.events.followed():
            self.wake()


def _visible(job: Job) -> tuple[Any, ...]:
    return (
        job.state,
        job.progress,
        job.stage,
        job.chunk_index,
        job.chunk_count,
        job.confirmed_at,
        job.updated_at,
    )


class _Listener:
    """``LISTEN`` on its own connection in a thread; hands each payload to the event loop."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop, callback: Callable[[str], None]) -> None:
        self.url = url
        self.loop = loop
        self.callback = callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="f5vi-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                                self.loop.call_soon_threadsafe(self.callback, note.payload)
            except Exception as exc:
                if self._stop.is_set():
                    return
                logger.warning("LISTEN connection lost (%s); polling until it is back", exc)
                self._stop.wait(1.0)
