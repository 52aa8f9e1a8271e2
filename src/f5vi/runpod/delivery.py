"""What a finished RunPod job returns, and its completion webhook — sent once per job, durably.

The output of a succeeded job is made from the job record each time it is asked for (a redelivery, a
worker restart): local links from the *current* base URL (a restarted worker may sit behind another
address), the bucket's presigned URL when the storage uploaded the file (see :mod:`f5vi.storage`),
``audio_base64`` for small files. Only the webhook's outcome is state of its own; it lives in the job
database's ``deliveries`` table, so a redelivered job notifies again only if the last try failed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from f5vi.config import Settings
from f5vi.engine.loading import DEMO_OUTPUT_WARNING
from f5vi.errors import scrub
from f5vi.jobs.links import confirmation_url, expires_at, output_url, subtitles_url
from f5vi.jobs.manager import JobManager
from f5vi.jobs.models import Job
from f5vi.jobs.subtitles import render
from f5vi.runpod import webhook
from f5vi.runpod.protocol import JobFailedError
from f5vi.storage import OutputStorage

logger = logging.getLogger("f5vi.runpod")

LEGACY_RECORD_DIR = "runpod"
"""Before the deliveries table, records were JSON files in ``data_dir/runpod`` (see :func:`migrate`)."""


def public_base_url(settings: Settings) -> str:
    """Base of the URLs handed to clients: configured, else the RunPod proxy of this pod's port."""
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    if settings.runpod_pod_id:
        return f"https://{settings.runpod_pod_id}-{settings.port}.proxy.runpod.net"
    host = settings.host if settings.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    return f"http://{host}:{settings.port}"


class Delivery:
    def __init__(
        self, settings: Settings, manager: JobManager, storage: OutputStorage, *, demo: bool = False
    ) -> None:
        self.settings = settings
        self.manager = manager
        self.storage = storage
        self.demo = demo  # the random-weight demo model runs (F5VI_DEMO_FALLBACK): outputs say so
        self.base_url = public_base_url(settings)
        self._locks: dict[str, asyncio.Lock] = {}

    async def output(self, rp_job: Mapping[str, Any], job: Job) -> dict[str, Any]:
        """The job's output; the webhook is sent (or retried) here, one delivery per job at a time."""
        lock = self._locks.setdefault(job.id, asyncio.Lock())
        async with lock:
            record = await self.manager.delivery_record(job.id) or {}
            if job.output_deleted_at is not None and not self._remote_url(job, record):
                raise JobFailedError(
                    "output_expired",
                    "the audio of this job was removed after its retention period",
                    job_id=job.id,
                )
            output = await self._output(rp_job, job, record)
            if self.settings.webhook_url:
                hook = record.get("webhook", {})
                if not hook.get("delivered"):
                    hook = await self._notify(rp_job, job, record, hook)
                    await self.manager.save_delivery_record(job.id, {**record, "webhook": hook})
                output["webhook_delivered"] = bool(hook["delivered"])
        if not lock.locked():
            self._locks.pop(job.id, None)
        return output

    @staticmethod
    def _remote_url(job: Job, record: Mapping[str, Any]) -> str | None:
        """The bucket's presigned URL (a migrated record may hold one from an older version)."""
        assert job.result is not None
        remote = job.result.remote_url or record.get("download_url")
        return str(remote) if remote else None

    def download_url(self, job: Job, record: Mapping[str, Any]) -> str:
        assert job.result is not None
        return self._remote_url(job, record) or output_url(self.base_url, job, job.result.filename)

    async def _output(self, rp_job: Mapping[str, Any], job: Job, record: Mapping[str, Any]) -> dict[str, Any]:
        result = job.result
        assert result is not None
        remote = self._remote_url(job, record) is not None
        output: dict[str, Any] = {
            "job_id": job.id,
            "runpod_job_id": rp_job.get("id"),
            "status": "completed",
            "filename": result.filename,
            "download_url": self.download_url(job, record),
            "confirmation_url": confirmation_url(self.base_url, job),
            "storage": "s3" if remote else "local",
            "sample_used": job.request.voice_id,
            "segments": [{"voice_id": s.voice_id, "chunk_count": s.chunk_count} for s in result.segments],
            "processing_time_seconds": result.processing_time_seconds,
            "duration_seconds": result.duration_seconds,
            "format": result.format,
            "media_type": result.media_type,
            "size_bytes": result.size_bytes,
            "sample_rate": result.sample_rate,
            "seed": result.seed,
            "expires_at": (result.remote_url_expires_at or record.get("url_expires_at"))
            if remote
            else expires_at(job, self.settings),
            "confirmed": job.confirmed_at is not None,
            "warnings": [scrub(w) for w in result.warnings],
        }
        if result.verification is not None:
            output["verification"] = result.verification
        if self.demo:
            output.update(demo=True, warnings=[DEMO_OUTPUT_WARNING, *output["warnings"]])
        # The long parts last (the audio, then its word times and subtitles): a reader, or a log that keeps
        # a result's head and tail, sees the short facts first.
        if 0 < result.size_bytes <= self.settings.audio_base64_max_bytes and job.output_deleted_at is None:
            path = self.storage.local_path(result.filename)
            if path is not None:
                data = await asyncio.to_thread(path.read_bytes)
                output["audio_base64"] = base64.b64encode(data).decode("ascii")
        if result.timestamps is not None:
            # the worker's own URLs may not outlive a serverless worker: the SRT/VTT text comes along too
            output["timestamps"] = result.timestamps
            output["subtitle_urls"] = {
                f: subtitles_url(self.base_url, job, f) for f in ("srt", "vtt", "json")
            }
            output["subtitles"] = {f: render(job.request.text, result.timestamps, f) for f in ("srt", "vtt")}
        return output

    async def _notify(
        self, rp_job: Mapping[str, Any], job: Job, record: Mapping[str, Any], previous: Mapping[str, Any]
    ) -> dict[str, Any]:
        outcome = await webhook.deliver(self._webhook_config(), self._webhook_body(rp_job, job, record))
        return {
            "delivered": outcome.delivered,
            "attempts": previous.get("attempts", 0) + outcome.attempts,
            "delivery_id": outcome.delivery_id,
            "status_code": outcome.status_code,
            "error": outcome.error,
        }

    def _webhook_config(self) -> webhook.WebhookConfig:
        s = self.settings
        return webhook.WebhookConfig(
            url=str(s.webhook_url),
            secret=s.webhook_secret.get_secret_value() if s.webhook_secret else None,
            api_key=s.webhook_api_key.get_secret_value() if s.webhook_api_key else None,
            retries=s.webhook_retries,
            timeout_seconds=s.webhook_timeout_seconds,
        )

    def _webhook_body(self, rp_job: Mapping[str, Any], job: Job, record: Mapping[str, Any]) -> dict[str, Any]:
        """The seed's four fields first (the Next.js route reads them), then a few useful extras."""
        assert job.result is not None
        return {
            "job_id": job.id,
            "download_url": self.download_url(job, record),
            "confirmation_url": confirmation_url(self.base_url, job),
            "filename": job.result.filename,
            "status": "completed",
            "runpod_job_id": rp_job.get("id"),
            "duration_seconds": job.result.duration_seconds,
            "media_type": job.result.media_type,
        }


async def migrate(manager: JobManager, data_dir: Path) -> int:
    """Move delivery records of older versions (``data_dir/runpod/<job>.json``) into the job database.

    A record whose job is gone is dropped; one that the table already has is not overwritten. Each file
    is removed once its record is stored, so the migration runs once and survives an interruption.
    """
    directory = data_dir / LEGACY_RECORD_DIR
    if not directory.is_dir():
        return 0
    moved = 0
    for path in sorted(directory.glob("*.json")):
        try:
            record = json.loads(await asyncio.to_thread(path.read_text, encoding="utf-8"))
        except (OSError, ValueError):
            logger.warning("unreadable delivery record %s left in place", path.name)
            continue
        job_id = path.stem
        if isinstance(record, dict) and await manager.get(job_id) is not None:
            moved += int(await manager.save_delivery_record(job_id, record, replace=False))
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()
    if moved:
        logger.info("moved %d delivery record(s) from %s into the job database", moved, directory)
    return moved
