"""The job state machine: what may follow what."""

from __future__ import annotations

import pytest

from f5vi.jobs.states import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATES,
    InvalidTransitionError,
    JobState,
    can_transition,
    check_transition,
)


def test_every_state_has_a_rule() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(JobState)


def test_terminal_states_never_change() -> None:
    assert {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED} == TERMINAL_STATES
    for state in TERMINAL_STATES:
        assert state.is_terminal
        for target in JobState:
            assert not can_transition(state, target)
            with pytest.raises(InvalidTransitionError):
                check_transition("j", state, target)


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (JobState.QUEUED, JobState.RUNNING, True),
        (JobState.QUEUED, JobState.CANCELLED, True),
        (JobState.QUEUED, JobState.FAILED, True),
        (JobState.QUEUED, JobState.SUCCEEDED, False),  # nothing succeeds without running
        (JobState.QUEUED, JobState.QUEUED, False),
        (JobState.RUNNING, JobState.SUCCEEDED, True),
        (JobState.RUNNING, JobState.FAILED, True),
        (JobState.RUNNING, JobState.CANCELLED, True),
        (JobState.RUNNING, JobState.QUEUED, True),  # restart / graceful shutdown re-queues
        (JobState.RUNNING, JobState.RUNNING, False),
    ],
)
def test_transitions(current: JobState, target: JobState, allowed: bool) -> None:
    assert can_transition(current, target) is allowed


def test_seed_status_vocabulary() -> None:
    # Seed pollers wait for progress == 100 and status == "completed", or status failed/cancelled.
    assert JobState.SUCCEEDED.legacy_status == "completed"
    assert JobState.FAILED.legacy_status == "failed"
    assert JobState.CANCELLED.legacy_status == "cancelled"
    assert JobState.RUNNING.legacy_status == "processing"
    assert JobState.QUEUED.legacy_status == "pending"
