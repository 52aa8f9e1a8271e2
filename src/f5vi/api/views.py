"""Job records -> response models (URLs, seed-compatible fields, expiry)."""

from __future__ import annotations

from dataclasses import asdict

from f5vi.api.schemas import JobErrorInfo, JobResultInfo, JobView
from f5vi.config import Settings
from f5vi.errors import scrub
from f5vi.jobs.links import confirmation_url, expires_at, output_url, progress_url, subtitles_url
from f5vi.jobs.manager import JobManager
from f5vi.jobs.models import Job
from f5vi.jobs.states import JobState


def _extra(job: Job, queue_position: int | None) -> str | None:
    if job.state is JobState.QUEUED:
        return f"queued, position {queue_position + 1}" if queue_position is not None else "queued"
    if job.state is JobState.RUNNING:
        if job.chunk_count:
            return f"{job.stage or 'running'}: chunk {job.chunk_index or 0}/{job.chunk_count}"
        return job.stage or "running"
    if job.state is JobState.SUCCEEDED and job.result is not None:
        return f"Completed in {job.result.processing_time_seconds:.2f}s"
    if job.error_message:
        return scrub(job.error_message)
    return job.state.value


def _result_info(job: Job, settings: Settings, base_url: str) -> JobResultInfo:
    """The stored result (fields of the same name) plus links, seed names and expiry."""
    result = job.result
    assert result is not None
    url = output_url(base_url, job, result.filename)
    return JobResultInfo.model_validate(
        {
            **asdict(result),
            "wav_url": url,
            "download_url": url,
            "confirmation_url": confirmation_url(base_url, job),
            "sample_used": job.request.voice_id,
            "text_ref": result.reference_text,
            "warnings": [scrub(w) for w in result.warnings],
            "output_available": job.output_deleted_at is None,
            "expires_at": expires_at(job, settings),
            "subtitle_urls": (
                {fmt: subtitles_url(base_url, job, fmt) for fmt in ("srt", "vtt", "json")}
                if result.timestamps is not None
                else None
            ),
        }
    )


def job_view(job: Job, manager: JobManager, settings: Settings, base_url: str) -> JobView:
    position = manager.queue_position(job.id) if job.state is JobState.QUEUED else None
    if job.state is JobState.QUEUED:
        eta = manager.estimated_wait_seconds(job.id)
    elif job.state is JobState.RUNNING:
        eta = job.eta_seconds
    else:
        eta = None
    result = None
    if job.state is JobState.SUCCEEDED and job.result is not None:
        result = _result_info(job, settings, base_url)
    error = None
    if job.state in (JobState.FAILED, JobState.CANCELLED) and job.error_code:
        error = JobErrorInfo(code=job.error_code, message=scrub(job.error_message or job.error_code))
    return JobView(
        job_id=job.id,
        state=job.state.value,
        status=job.state.legacy_status,
        progress=round(min(max(job.progress, 0.0), 100.0), 1),
        stage=job.stage,
        chunk_index=job.chunk_index,
        chunk_count=job.chunk_count,
        extra=_extra(job, position),
        eta_seconds=round(eta, 1) if eta is not None else None,
        queue_position=position,
        attempts=job.attempts,
        cancel_requested=manager.is_cancel_requested(job.id),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        timestamp=job.updated_at,
        sample_used=job.request.voice_id,
        filename=job.output_filename,
        wav_url=output_url(base_url, job, job.output_filename),
        progress_url=progress_url(base_url, job.id),
        error=error,
        result=result,
    )
