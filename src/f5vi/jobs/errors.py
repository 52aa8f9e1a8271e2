"""Errors the job system raises on purpose; each has a stable ``code`` and its HTTP status."""

from __future__ import annotations

from typing import TYPE_CHECKING

from f5vi.errors import F5viError

if TYPE_CHECKING:
    from f5vi.jobs.models import Job


class JobError(F5viError, code="job_error"):
    """Base class of every error the job system raises on purpose."""


class InvalidJobIdError(JobError, code="invalid_job_id", http_status=422):
    """A client job id or idempotency key that is not of the allowed form."""


class UnknownJobError(JobError, code="job_not_found", http_status=404):
    """No job with this id (never created, or its record was purged)."""

    def __init__(self, job_id: str) -> None:
        super().__init__("no job with this id")
        self.job_id = job_id


class JobConflictError(JobError, code="job_conflict", http_status=409):
    """The job id (or idempotency key) is taken by a different request."""

    def __init__(self, existing: Job) -> None:
        super().__init__(
            f"job id {existing.id!r} is already used by a different request; choose another job_id"
        )
        self.existing = existing


class JobFinishedError(JobError, code="job_finished", http_status=409):
    """Cancel of a job that already reached a terminal state."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job already {job.state.value}; nothing to cancel")
        self.job = job


class JobNotSucceededError(JobError, code="job_not_succeeded", http_status=409):
    """A download confirmation for a job without an output (yet)."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job is {job.state.value}; only a succeeded job has a download to confirm")
        self.job = job


class InvalidConfirmationTokenError(JobError, code="invalid_confirmation_token", http_status=403):
    """A download confirmation without the job's secret token (or with a wrong one)."""

    def __init__(self) -> None:
        super().__init__("missing or wrong confirmation token; use the confirmation_url of the job")


class QueueFullError(JobError, code="queue_full", http_status=429):
    """The engine queue is at ``F5VI_QUEUE_MAX``; the answer says when to retry."""

    def __init__(self, depth: int, retry_after_seconds: int) -> None:
        super().__init__(f"the job queue is full ({depth} jobs waiting); retry later")
        self.depth = depth
        self.retry_after_seconds = retry_after_seconds

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class ServiceUnavailableError(JobError, code="service_unavailable", http_status=503):
    """The engine is loading or failed to load, or the server is shutting down."""

    def __init__(self, message: str, *, retry_after_seconds: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)} if self.retry_after_seconds else {}


class JobStoreWriteError(JobError, code="job_store_write_failed", http_status=503):
    """The job database refused a write (other than a full disk, which is ``insufficient_storage``)."""

    retry_after_seconds = 30

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class PreviewsBusyError(JobError, code="too_many_previews", http_status=429):
    """``POST /normalize`` is at its bound of previews planned at once; the answer says when to retry."""

    def __init__(self, running: int, retry_after_seconds: int = 2) -> None:
        super().__init__(f"{running} text previews are being prepared; retry shortly")
        self.retry_after_seconds = retry_after_seconds

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}
