"""JobStore: atomic, durable transitions; idempotency; restart recovery; retention queries.

Tests taking the ``store`` fixture run twice: on SQLite (the default) and on a real PostgreSQL
server (tests/pg_server.py). The work-sharing half of the store is in test_jobs_store_sharing.py.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from f5vi.jobs.database import StoreLockedError
from f5vi.jobs.models import JobRequest, JobResult, JobSegment
from f5vi.jobs.states import InvalidTransitionError, JobState
from f5vi.jobs.store import (
    INTERRUPTED,
    DuplicateJobError,
    JobNotFoundError,
    JobStore,
)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def request(text: str = "xin chào", **changes: object) -> JobRequest:
    base = dict(
        text=text,
        voice_id="v1",
        ref_name="v1.wav",
        speed=0.9,
        nfe_step=32,
        seed=None,
        format="wav",
        cfg_strength=2.0,
        sway_sampling_coef=-1.0,
        ode_method="euler",
        cross_fade_seconds=0.15,
    )
    base.update(changes)
    return JobRequest(**base)  # type: ignore[arg-type]


def result(filename: str) -> JobResult:
    return JobResult(
        filename=filename,
        format="wav",
        media_type="audio/wav",
        size_bytes=10,
        duration_seconds=1.0,
        sample_rate=24000,
        seed=7,
        reference_text="ref",
        normalized_text="xin chào",
        chunk_count=1,
        processing_time_seconds=0.5,
    )


def create(store: JobStore, job_id: str, **kw: object) -> None:
    store.create(
        job_id=job_id,
        kind="tts",
        request=kw.pop("req", request()),  # type: ignore[arg-type]
        output_filename=f"{job_id}_00000000.wav",
        confirm_token="tok-" + job_id,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> JobStore:
    if request.param == "sqlite":
        target: str | Path = tmp_path / "jobs.sqlite3"
    else:
        target = request.getfixturevalue("pg_url")
    s = JobStore(target, clock=Clock())
    s.open()
    assert s.backend == request.param
    yield s
    s.close()


def test_create_and_read_back(store: JobStore) -> None:
    create(store, "a", idempotency_key="rp-1")
    job = store.get("a")
    assert job is not None
    assert job.state is JobState.QUEUED
    assert job.request == request()
    assert job.request_hash == request().fingerprint()
    assert job.progress == 0 and job.attempts == 0
    assert store.get_by_idempotency_key("rp-1") == job
    assert store.find_by_output("a_00000000.wav") == job
    assert store.get("nope") is None


def test_wal_and_full_sync(tmp_path: Path) -> None:
    with JobStore(f"sqlite:///{tmp_path / 'jobs.sqlite3'}") as store:
        assert store.backend == "sqlite" and store.path == tmp_path / "jobs.sqlite3"
    conn = sqlite3.connect(tmp_path / "jobs.sqlite3")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_duplicates_are_refused_atomically(store: JobStore) -> None:
    create(store, "a", idempotency_key="k")
    with pytest.raises(DuplicateJobError) as by_id:
        create(store, "a")
    assert by_id.value.existing.id == "a"
    with pytest.raises(DuplicateJobError) as by_key:
        create(store, "b", idempotency_key="k")
    assert by_key.value.existing.id == "a"
    assert sum(store.counts().values()) == 1 and store.get("b") is None  # only "a" exists


def test_fingerprint_tells_retries_from_conflicts() -> None:
    assert request().fingerprint() == request(ref_name="sample/v1.wav").fingerprint()  # same voice
    assert request().fingerprint() != request(text="khác").fingerprint()
    assert request().fingerprint() != request(speed=1.0).fingerprint()
    assert request().fingerprint() != request(seed=3).fingerprint()
    assert request().fingerprint() != request(format="mp3").fingerprint()


def test_lifecycle_stamps_times_and_attempts(store: JobStore) -> None:
    clock: Clock = store._clock  # type: ignore[assignment]
    create(store, "a")
    clock.now += 5
    running = store.transition("a", JobState.RUNNING, expected={JobState.QUEUED})
    assert running.started_at == clock.now and running.attempts == 1
    assert store.update_progress(
        "a", progress=40, stage="synthesizing", chunk_index=1, chunk_count=3, eta_seconds=2
    )
    assert store.update_progress(
        "a", progress=10, stage="vocoding", chunk_index=1, chunk_count=3, eta_seconds=1
    )
    now = store.get("a")
    assert now is not None and now.progress == 40 and now.stage == "vocoding"  # never lowered
    clock.now += 5
    done = store.transition("a", JobState.SUCCEEDED, result=result("a_00000000.wav"))
    assert done.progress == 100.0
    assert done.finished_at == clock.now
    assert done.result == result("a_00000000.wav")
    assert not store.update_progress(
        "a", progress=50, stage="x", chunk_index=None, chunk_count=None, eta_seconds=None
    )


def test_forbidden_transitions_change_nothing(store: JobStore) -> None:
    create(store, "a")
    store.transition("a", JobState.CANCELLED, error_code="cancelled", error_message="by test")
    before = store.get("a")
    for target in JobState:
        with pytest.raises(InvalidTransitionError):
            store.transition("a", target)
    assert store.get("a") == before
    create(store, "b")
    with pytest.raises(InvalidTransitionError):
        store.transition("b", JobState.FAILED, expected={JobState.RUNNING})
    assert store.get("b").state is JobState.QUEUED  # type: ignore[union-attr]
    with pytest.raises(JobNotFoundError):
        store.transition("zzz", JobState.RUNNING)
    with pytest.raises(ValueError, match="cannot set"):
        store.transition("b", JobState.RUNNING, state="succeeded")


def test_progress_in_a_transition_never_goes_down(store: JobStore) -> None:
    create(store, "a")
    store.transition("a", JobState.RUNNING, progress=1)
    store.update_progress("a", progress=60, stage="synthesizing", chunk_index=1, chunk_count=2, eta_seconds=1)
    failed = store.transition("a", JobState.FAILED, progress=5, error_code="x", error_message="y")
    assert failed.progress == 60


def test_recover_requeues_once_then_fails(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with JobStore(path) as s:
        for job_id in ("first", "second", "third", "fourth"):
            create(s, job_id)
        s.transition("first", JobState.RUNNING)  # attempt 1: interrupted below
        s.transition("second", JobState.RUNNING)
        s.transition("second", JobState.SUCCEEDED, result=result("second_00000000.wav"))
    with JobStore(path) as s:
        report = s.recover(max_attempts=2)
        assert report.requeued == ["first"] and report.failed == []
        assert report.queued == ["first", "third", "fourth"]  # submission order
        first = s.get("first")
        assert first is not None and first.state is JobState.QUEUED and first.attempts == 1
        assert s.get("second").state is JobState.SUCCEEDED  # type: ignore[union-attr]
        s.transition("first", JobState.RUNNING)  # attempt 2: interrupted again
    with JobStore(path) as s:
        report = s.recover(max_attempts=2)
        assert report.failed == ["first"] and report.requeued == []
        first = s.get("first")
        assert first is not None and first.state is JobState.FAILED
        assert first.error_code == INTERRUPTED and "2 times" in (first.error_message or "")
        assert report.queued == ["third", "fourth"]


def test_committed_transitions_survive_kill_9(tmp_path: Path) -> None:
    """A process that dies by SIGKILL right after a transition returned has it on disk."""
    path = tmp_path / "jobs.sqlite3"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_jobs_store import create
        from f5vi.jobs.store import JobStore
        from f5vi.jobs.states import JobState
        s = JobStore(__import__("pathlib").Path({str(path)!r})).open()
        create(s, "a"); create(s, "b")
        s.transition("a", JobState.RUNNING)
        s.update_progress(
            "a", progress=42.0, stage="synthesizing", chunk_index=2, chunk_count=5, eta_seconds=3.0
        )
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr.decode()
    with JobStore(path) as s:  # the lock died with the process
        a = s.get("a")
        assert (
            a is not None and a.state is JobState.RUNNING and a.progress == 42.0 and a.stage == "synthesizing"
        )
        report = s.recover()
        assert report.requeued == ["a"] and report.queued == ["a", "b"]


def test_one_process_per_database(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with JobStore(path), pytest.raises(StoreLockedError):
        JobStore(path).open()
    with JobStore(path) as again:  # released on close
        assert sum(again.counts().values()) == 0


def test_retention_queries(store: JobStore) -> None:
    clock: Clock = store._clock  # type: ignore[assignment]
    t0 = clock.now
    for job_id in ("old", "confirmed", "fresh", "failed"):
        create(store, job_id)
        store.transition(job_id, JobState.RUNNING)
    for job_id in ("old", "confirmed", "fresh"):
        store.transition(job_id, JobState.SUCCEEDED, result=result(f"{job_id}_00000000.wav"))
    store.transition("failed", JobState.FAILED, error_code="x", error_message="y")
    clock.now = t0 + 100
    store.confirm_download("confirmed")
    first_confirm = store.get("confirmed").confirmed_at  # type: ignore[union-attr]
    clock.now = t0 + 150
    assert store.confirm_download("confirmed").confirmed_at == first_confirm  # kept, not moved
    # ttl 1000 s, confirmed ttl 60 s, now = t0 + 200: only the confirmed one is due
    due = store.outputs_to_expire(now=t0 + 200, ttl_seconds=1000, confirmed_ttl_seconds=60)
    assert [j.id for j in due] == ["confirmed"]
    store.mark_output_deleted("confirmed")
    due = store.outputs_to_expire(now=t0 + 1001, ttl_seconds=1000, confirmed_ttl_seconds=60)
    assert [j.id for j in due] == ["old", "fresh", "failed"]
    assert store.known_output_filenames() == {
        "old_00000000.wav",
        "fresh_00000000.wav",
        "failed_00000000.wav",
    }
    # records: a succeeded job is purged only once its output is gone
    purged = store.purge_finished(before=t0 + 10_000)
    assert sorted(purged) == ["confirmed", "failed"]
    assert store.get("old") is not None


def test_a_result_keeps_its_voice_segments_and_old_results_still_load() -> None:
    two = replace(result("a.wav"), segments=[JobSegment("v1", 2), JobSegment("v2", 1)])
    assert JobResult.from_json(two.to_json()) == two
    legacy = json.loads(result("b.wav").to_json())
    del legacy["segments"]  # stored before voice tags existed
    assert JobResult.from_json(json.dumps(legacy)) == result("b.wav")
