"""Output retention: audio files are deleted after their TTL (sooner once a download is confirmed).

Also removes files no job owns (records purged, writes a crash interrupted) and purges old finished
job records, so the data and output directories stay bounded on a long-running server.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from f5vi.config import Settings
from f5vi.jobs.tracker import JobTracker
from f5vi.storage import OutputStorage

logger = logging.getLogger(__name__)

PARTIAL_MAX_AGE_SECONDS = 3600.0


@dataclass(frozen=True)
class OutputRetention:
    tracker: JobTracker
    storage: OutputStorage
    settings: Settings

    async def run_once(self, *, now: float | None = None) -> int:
        """One pass; returns how many output files were removed."""
        tracker, s = self.tracker, self.settings
        now = tracker.clock() if now is None else now
        expired = await tracker.db(
            tracker.store.outputs_to_expire,
            now=now,
            ttl_seconds=s.output_ttl_seconds,
            confirmed_ttl_seconds=s.confirmed_output_ttl_seconds,
        )
        removed = 0
        for job in expired:
            if await tracker.db(self.storage.delete, job.output_filename):
                removed += 1
            tracker.update(await tracker.db(tracker.store.mark_output_deleted, job.id))
        removed += await tracker.db(self._remove_strays, now)
        purged = await tracker.db(tracker.store.purge_finished, before=now - s.job_record_ttl_seconds)
        for job_id in purged:
            tracker.forget(job_id)
        if removed or purged:
            logger.info("retention: removed %d output file(s), %d old job record(s)", removed, len(purged))
        return removed

    def _remove_strays(self, now: float) -> int:
        """Files in the output dir that no job owns (e.g. records purged) once past the TTL."""
        known = self.tracker.store.known_output_filenames()
        removed = 0
        for item in list(self.storage.list_files()):
            if item.filename not in known and item.modified_at <= now - self.settings.output_ttl_seconds:
                removed += int(self.storage.delete(item.filename))
        removed += self.storage.remove_partials(older_than_seconds=PARTIAL_MAX_AGE_SECONDS)
        return removed

    async def run_forever(self, interval_seconds: float) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                logger.exception("output retention pass failed")
            await asyncio.sleep(interval_seconds)
