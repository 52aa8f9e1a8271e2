"""The URLs a client is given for a job, and when its audio expires (HTTP API and RunPod alike).

Download and confirmation links carry the job's secret token, so they work without the API key: a
webhook receiver or a browser holds only the URL, and a token opens nothing but its own job.
"""

from __future__ import annotations

from urllib.parse import quote

from f5vi.config import Settings
from f5vi.jobs.models import Job
from f5vi.jobs.states import JobState


def output_url(base_url: str, job: Job, filename: str) -> str:
    return f"{base_url}/output/{quote(filename)}?token={quote(job.confirm_token)}"


def subtitles_url(base_url: str, job: Job, fmt: str) -> str:
    """The job's subtitles, let in on the job's download token like its audio."""
    return f"{base_url}/tts/{quote(job.id)}/subtitles?format={fmt}&token={quote(job.confirm_token)}"


def progress_url(base_url: str, job_id: str) -> str:
    return f"{base_url}/tts/progress/{quote(job_id)}"


def confirmation_url(base_url: str, job: Job) -> str:
    return f"{base_url}/confirm-download/{quote(job.id)}?token={quote(job.confirm_token)}"


def check_url(base_url: str, job_id: str) -> str:
    return f"{base_url}/check-download/{quote(job_id)}"


def expires_at(job: Job, settings: Settings) -> float | None:
    """When retention removes the output of a succeeded job (sooner once it was confirmed)."""
    if job.state is not JobState.SUCCEEDED or job.finished_at is None:
        return None
    when = job.finished_at + settings.output_ttl_seconds
    if job.confirmed_at is not None:
        when = min(when, job.confirmed_at + settings.confirmed_output_ttl_seconds)
    return when
