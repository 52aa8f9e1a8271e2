"""The work-sharing half of JobStore (claims, leases, takeovers, kills from another instance) and
schema migrations, on both backends; concurrent claims on a real PostgreSQL server."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from test_jobs_store import Clock, create, result

from f5vi.jobs.states import JobState
from f5vi.jobs.store import INTERRUPTED, SCHEMA_VERSION, JobStore, LeaseLostError


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> JobStore:
    target: str | Path = (
        tmp_path / "jobs.sqlite3" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    )
    s = JobStore(target, clock=Clock())
    s.open()
    yield s
    s.close()


def test_claim_takes_oldest_unheld_jobs_up_to_the_limit(store: JobStore) -> None:
    for job_id in ("a", "b", "c"):
        create(store, job_id)
    first = store.claim("A", limit=2, lease_seconds=30, max_attempts=2)
    assert [j.id for j in first.claimed] == ["a", "b"] and first.ended == []
    assert all(j.owner == "A" and j.state is JobState.QUEUED for j in first.claimed)
    second = store.claim("B", limit=5, lease_seconds=30, max_attempts=2)
    assert [j.id for j in second.claimed] == ["c"]  # a and b are held
    assert store.claim("B", limit=5, lease_seconds=30, max_attempts=2).claimed == []
    assert store.claim("B", limit=0, lease_seconds=30, max_attempts=2).claimed == []


def test_only_the_owner_moves_a_claimed_job(store: JobStore) -> None:
    create(store, "a")
    store.claim("A", limit=1, lease_seconds=30, max_attempts=2)
    with pytest.raises(LeaseLostError):
        store.transition("a", JobState.RUNNING, expected={JobState.QUEUED}, owner="B")
    running = store.transition("a", JobState.RUNNING, expected={JobState.QUEUED}, owner="A")
    assert running.attempts == 1 and running.owner == "A"
    assert not store.update_progress(
        "a", progress=50, stage="x", chunk_index=1, chunk_count=2, eta_seconds=None, owner="B"
    )
    assert store.update_progress(
        "a", progress=50, stage="x", chunk_index=1, chunk_count=2, eta_seconds=None, owner="A"
    )
    done = store.transition("a", JobState.SUCCEEDED, owner="A", result=result("a_00000000.wav"))
    assert done.state is JobState.SUCCEEDED and done.lease_expires_at is None


def test_an_expired_lease_is_taken_over_and_the_old_owner_cannot_finish(store: JobStore) -> None:
    clock: Clock = store._clock  # type: ignore[assignment]
    create(store, "a")
    store.claim("A", limit=1, lease_seconds=10, max_attempts=3)
    store.transition("a", JobState.RUNNING, owner="A")
    clock.now += 5
    assert store.renew("A", ["a"], lease_seconds=10).owned == ["a"]  # now good until +15
    clock.now += 9
    assert store.claim("B", limit=1, lease_seconds=10, max_attempts=3).claimed == []  # still held
    clock.now += 7  # A stopped renewing: expired
    taken = store.claim("B", limit=1, lease_seconds=10, max_attempts=3).claimed
    assert [j.id for j in taken] == ["a"]
    assert taken[0].state is JobState.QUEUED and taken[0].owner == "B" and taken[0].attempts == 1
    assert store.renew("A", ["a"], lease_seconds=10).owned == []  # A learns it lost the job
    with pytest.raises(LeaseLostError):
        store.transition("a", JobState.SUCCEEDED, owner="A", result=result("a_00000000.wav"))
    again = store.transition("a", JobState.RUNNING, owner="B")
    assert again.attempts == 2  # the takeover counts as an attempt
    done = store.transition("a", JobState.SUCCEEDED, owner="B", result=result("a_00000000.wav"))
    assert done.state is JobState.SUCCEEDED


def test_a_job_expired_max_attempts_times_fails(store: JobStore) -> None:
    clock: Clock = store._clock  # type: ignore[assignment]
    create(store, "a")
    for owner in ("A", "B"):
        assert store.claim(owner, limit=1, lease_seconds=10, max_attempts=2).claimed
        store.transition("a", JobState.RUNNING, owner=owner)
        clock.now += 11
    report = store.claim("C", limit=1, lease_seconds=10, max_attempts=2)
    assert report.claimed == [] and [j.id for j in report.ended] == ["a"]
    job = store.get("a")
    assert job is not None and job.state is JobState.FAILED and job.error_code == INTERRUPTED


def test_kill_of_a_job_held_elsewhere_is_a_request_for_its_owner(store: JobStore) -> None:
    clock: Clock = store._clock  # type: ignore[assignment]
    create(store, "free")
    cancelled = store.request_cancel("free")  # nobody holds it: cancelled at once
    assert cancelled.state is JobState.CANCELLED
    create(store, "held")
    store.claim("A", limit=1, lease_seconds=10, max_attempts=2)
    store.transition("held", JobState.RUNNING, owner="A")
    asked = store.request_cancel("held")
    assert asked.state is JobState.RUNNING and asked.cancel_requested_at == clock.now
    assert store.renew("A", ["held"], lease_seconds=10).cancel_requested == ["held"]
    store.transition("held", JobState.CANCELLED, owner="A", error_code="cancelled", error_message="x")
    assert store.request_cancel("held").state is JobState.CANCELLED  # finished: unchanged
    # a kill asked of an owner that died ends the job when it is taken over, it does not run again
    create(store, "orphan")
    store.claim("A", limit=1, lease_seconds=10, max_attempts=2)
    store.request_cancel("orphan")
    clock.now += 11
    report = store.claim("B", limit=1, lease_seconds=10, max_attempts=2)
    assert [j.id for j in report.ended] == ["orphan"] and report.ended[0].state is JobState.CANCELLED


def test_a_lease_is_renewed_only_for_the_jobs_named(store: JobStore) -> None:
    """A restarted instance with the same name does not keep its previous life's jobs alive."""
    clock: Clock = store._clock  # type: ignore[assignment]
    create(store, "old")
    create(store, "new")
    store.claim("A", limit=1, lease_seconds=10, max_attempts=3)
    store.transition("old", JobState.RUNNING, owner="A")  # then "A" restarts: it runs nothing
    store.claim("A", limit=1, lease_seconds=10, max_attempts=3)
    clock.now += 8
    assert store.renew("A", ["new"], lease_seconds=10).owned == ["new"]
    clock.now += 3
    taken = store.claim("B", limit=5, lease_seconds=10, max_attempts=3).claimed
    assert [j.id for j in taken] == ["old"] and taken[0].attempts == 1


def test_release_gives_unstarted_jobs_back(store: JobStore) -> None:
    create(store, "a")
    create(store, "b")
    store.claim("A", limit=2, lease_seconds=30, max_attempts=2)
    store.transition("a", JobState.RUNNING, owner="A")
    assert store.release("A", ["a", "b"]) == 1  # only the queued one
    assert [j.id for j in store.claim("B", limit=5, lease_seconds=30, max_attempts=2).claimed] == ["b"]


def test_schema_version_is_current(store: JobStore) -> None:
    assert store.schema_version() == SCHEMA_VERSION == 4


def test_a_version_2_sqlite_file_is_migrated(tmp_path: Path) -> None:
    """A database written before leases existed opens, keeps its jobs, and gains the new columns."""
    from f5vi.jobs.store import SQLITE_MIGRATIONS

    path = tmp_path / "jobs.sqlite3"
    conn = sqlite3.connect(path)
    for step in SQLITE_MIGRATIONS[:2]:
        conn.executescript(step)
    conn.execute(
        "INSERT INTO jobs (id, kind, state, request, request_hash, output_filename, confirm_token,"
        " created_at, updated_at) VALUES ('old', 'tts', 'queued', ?, 'h', 'old_0.wav', 't', 1, 1)",
        (__import__("test_jobs_store").request().to_json(),),
    )
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()
    with JobStore(path) as s:
        assert s.schema_version() == SCHEMA_VERSION
        job = s.get("old")
        assert job is not None and job.owner is None and job.cancel_requested_at is None


def test_a_newer_schema_is_refused(store: JobStore, tmp_path: Path) -> None:
    from f5vi.jobs.database import DatabaseError

    if store.backend == "sqlite":
        store._db.execute("PRAGMA user_version=99")
    else:
        store._db.execute("UPDATE f5vi_schema SET version = 99")
    store.close()
    with pytest.raises(DatabaseError, match="newer"):
        store.open()


def test_concurrent_claims_never_take_a_job_twice(pg_url: str) -> None:
    """Four connections claim 60 jobs at once with FOR UPDATE SKIP LOCKED: each job exactly once."""
    with JobStore(pg_url) as setup:
        for i in range(60):
            create(setup, f"j{i:02d}")
    taken: dict[str, list[str]] = {}
    barrier = threading.Barrier(4)

    def worker(owner: str) -> None:
        with JobStore(pg_url) as s:
            barrier.wait(timeout=30)
            mine: list[str] = []
            while batch := s.claim(owner, limit=3, lease_seconds=60, max_attempts=2).claimed:
                mine += [j.id for j in batch]
            taken[owner] = mine

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    everything = [job for mine in taken.values() for job in mine]
    assert sorted(everything) == [f"j{i:02d}" for i in range(60)]  # none lost, none twice
