"""Progress of running jobs: persisted first, shown second, and never going backwards.

The engine reports progress from its worker thread many times a second; clients only ever see
progress that was written to the job database, so what they saw survives a ``kill -9``. Writes
happen on a stage change or every ``persist_seconds``; updates in between are folded together.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from f5vi.jobs.states import JobState
from f5vi.jobs.tracker import JobTracker

logger = logging.getLogger(__name__)

# Where each part of a job lands on the 0-100 progress scale.
P_STARTING = 1.0
P_TRANSCRIBING = 2.0
P_ENGINE_START = 5.0
P_ENGINE_END = 95.0
P_ENCODING = 96.0
P_SAVING = 98.0


def engine_progress(fraction: float) -> float:
    """The engine's 0-1 fraction on the job's 0-100 scale."""
    return P_ENGINE_START + (P_ENGINE_END - P_ENGINE_START) * min(max(float(fraction), 0.0), 1.0)


@dataclass(frozen=True)
class ProgressWriter:
    tracker: JobTracker
    persist_seconds: float
    spawn: Callable[[Awaitable[Any]], None]
    """Runs a write in the background (the caller is the engine's progress callback)."""

    def update(
        self,
        job_id: str,
        progress: float,
        stage: str | None,
        chunk_index: int | None = None,
        chunk_count: int | None = None,
        eta: float | None = None,
    ) -> None:
        """Take an update (event loop thread); it is published once it is on disk."""
        job = self.tracker.snapshot(job_id)
        active = self.tracker.active(job_id)
        if job is None or active is None or job.state is not JobState.RUNNING:
            return
        base = active.pending or job
        if stage == "done":  # the engine's last call; our own stages follow
            stage = base.stage
        active.pending = replace(
            base,
            progress=round(max(base.progress, job.progress, min(progress, 99.0)), 2),
            stage=stage,
            chunk_index=chunk_index if chunk_index is not None else base.chunk_index,
            chunk_count=chunk_count if chunk_count is not None else base.chunk_count,
            eta_seconds=round(eta, 1) if eta is not None else None,
        )
        due = stage != job.stage or time.monotonic() - active.last_flush >= self.persist_seconds
        if due and not active.flushing:
            active.flushing = True
            self.spawn(self._flush(job_id))

    async def _flush(self, job_id: str) -> None:
        tracker = self.tracker
        active = tracker.active(job_id)
        if active is None:
            return
        try:
            while (pending := active.pending) is not None:
                active.pending = None
                active.last_flush = time.monotonic()
                try:
                    written = await tracker.db(
                        tracker.store.update_progress,
                        job_id,
                        progress=pending.progress,
                        stage=pending.stage,
                        chunk_index=pending.chunk_index,
                        chunk_count=pending.chunk_count,
                        eta_seconds=pending.eta_seconds,
                        owner=tracker.owner,
                    )
                except Exception as exc:  # e.g. a full disk: clients see it once a write succeeds
                    if not active.progress_write_failed:
                        logger.warning("job %s: progress not saved (%s); it is shown once it is", job_id, exc)
                    active.progress_write_failed = True
                    return
                active.progress_write_failed = False
                current = tracker.snapshot(job_id)
                if not written or current is None or current.state is not JobState.RUNNING:
                    active.pending = None
                    return
                visible = replace(
                    current,
                    progress=max(current.progress, pending.progress),
                    stage=pending.stage,
                    chunk_index=pending.chunk_index,
                    chunk_count=pending.chunk_count,
                    eta_seconds=pending.eta_seconds,
                    updated_at=tracker.clock(),
                )
                tracker.show(visible)
                nxt = active.pending
                if nxt is None or nxt.stage == visible.stage:
                    return  # the rest waits for the next interval
        finally:
            active.flushing = False
