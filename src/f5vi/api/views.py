"""Job records -> response models (URLs, seed-compatible fields, expiry)."""

from __future__ import annotations

from urllib.parse import quote

from f5vi.api.errors import scrub
from f5vi.api.schemas import JobErrorInfo, JobResultInfo, JobView
from f5vi.config import Settings
from f5vi.jobs.manager import JobManager
from f5vi.jobs.models import Job
from f5vi.jobs.states import JobState


def output_url(base_url: str, job: Job, filename: str) -> str:
    """Download link carrying the job's secret token, so it works without the API key (webhooks)."""
    return f"{base_url}/output/{quote(filename)}?token={quote(job.confirm_token)}"


def progress_url(base_url: str, job_id: str) -> str:
    return f"{base_url}/tts/progress/{quote(job_id)}"


def confirmation_url(base_url: str, job: Job) -> str:
    return f"{base_url}/confirm-download/{quote(job.id)}?token={quote(job.confirm_token)}"


def check_url(base_url: str, job_id: str) -> str:
    return f"{base_url}/check-download/{quote(job_id)}"


def expires_at(job: Job, settings: Settings) -> float | None:
    if job.state is not JobState.SUCCEEDED or job.finished_at is None:
        return None
    when = job.finished_at + settings.output_ttl_seconds
    if job.confirmed_at is not None:
        when = min(when, job.confirmed_at + settings.confirmed_output_ttl_seconds)
    return when


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
        r = job.result
        url = output_url(base_url, job, r.filename)
        result = JobResultInfo(
            filename=r.filename,
            wav_url=url,
            download_url=url,
            confirmation_url=confirmation_url(base_url, job),
            format=r.format,
            media_type=r.media_type,
            size_bytes=r.size_bytes,
            duration_seconds=r.duration_seconds,
            sample_rate=r.sample_rate,
            seed=r.seed,
            sample_used=job.request.voice_id,
            text_ref=r.reference_text,
            normalized_text=r.normalized_text,
            chunk_count=r.chunk_count,
            processing_time_seconds=r.processing_time_seconds,
            warnings=[scrub(w) for w in r.warnings],
            output_available=job.output_deleted_at is None,
            expires_at=expires_at(job, settings),
        )
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
