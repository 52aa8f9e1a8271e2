"""Job states and the transitions allowed between them.

``queued -> running -> succeeded | failed | cancelled``; a queued job may also be cancelled or failed
(its voice vanished, the server gave up on it), and a running job goes back to ``queued`` only when a
restart or a graceful shutdown interrupts it. Terminal states never change again.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def legacy_status(self) -> str:
        """The seed's vocabulary (``status`` field) so existing pollers keep working.

        The seed reported ``processing`` while a job ran, ``completed`` when done and ``failed`` /
        ``cancelled`` otherwise; its pollers wait for ``progress == 100 and status == "completed"``.
        """
        return _LEGACY[self]


TERMINAL_STATES: frozenset[JobState] = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
ACTIVE_STATES: frozenset[JobState] = frozenset({JobState.QUEUED, JobState.RUNNING})

ALLOWED_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.QUEUED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}

_LEGACY = {
    JobState.QUEUED: "pending",
    JobState.RUNNING: "processing",
    JobState.SUCCEEDED: "completed",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "cancelled",
}


class InvalidTransitionError(Exception):
    """A transition the state machine forbids (e.g. anything out of a terminal state)."""

    def __init__(self, job_id: str, current: JobState, target: JobState) -> None:
        super().__init__(f"job {job_id}: {current} -> {target} is not allowed")
        self.job_id = job_id
        self.current = current
        self.target = target


def can_transition(current: JobState, target: JobState) -> bool:
    return target in ALLOWED_TRANSITIONS[current]


def check_transition(job_id: str, current: JobState, target: JobState) -> None:
    if not can_transition(current, target):
        raise InvalidTransitionError(job_id, current, target)
