"""Errors the job manager raises on purpose. Each has a stable ``code``; the API maps them to HTTP."""

from __future__ import annotations

from f5vi.jobs.models import Job


class JobError(Exception):
    code: str = "job_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidJobIdError(JobError):
    code = "invalid_job_id"


class UnknownJobError(JobError):
    code = "job_not_found"

    def __init__(self, job_id: str) -> None:
        super().__init__("no job with this id")
        self.job_id = job_id


class JobConflictError(JobError):
    """The job id (or idempotency key) is taken by a different request."""

    code = "job_conflict"

    def __init__(self, existing: Job) -> None:
        super().__init__(
            f"job id {existing.id!r} is already used by a different request; choose another job_id"
        )
        self.existing = existing


class JobFinishedError(JobError):
    """Cancel of a job that already reached a terminal state."""

    code = "job_finished"

    def __init__(self, job: Job) -> None:
        super().__init__(f"job already {job.state.value}; nothing to cancel")
        self.job = job


class JobNotSucceededError(JobError):
    """A download confirmation for a job without an output (yet)."""

    code = "job_not_succeeded"

    def __init__(self, job: Job) -> None:
        super().__init__(f"job is {job.state.value}; only a succeeded job has a download to confirm")
        self.job = job


class InvalidConfirmationTokenError(JobError):
    code = "invalid_confirmation_token"

    def __init__(self) -> None:
        super().__init__("missing or wrong confirmation token; use the confirmation_url of the job")


class QueueFullError(JobError):
    code = "queue_full"

    def __init__(self, depth: int, retry_after_seconds: int) -> None:
        super().__init__(f"the job queue is full ({depth} jobs waiting); retry later")
        self.depth = depth
        self.retry_after_seconds = retry_after_seconds


class ServiceUnavailableError(JobError):
    """The engine failed to load, or the manager is shutting down."""

    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after_seconds: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
