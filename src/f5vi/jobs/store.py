"""Durable job table on SQLite (WAL; the default) or PostgreSQL (several instances, one table).

Every state change is one transaction that reads the current state (row-locked on PostgreSQL;
SQLite's ``BEGIN IMMEDIATE`` locks the file), checks the transition against
:mod:`f5vi.jobs.states`, and writes the new row; callers announce a change only after the method
returned, so whatever a client has seen survives a crash. Both backends run the same SQL (``?``
placeholders, ``ON CONFLICT``, ``CASE`` instead of two-argument ``MAX``) and the same numbered
migrations (:data:`SCHEMA_VERSION`).

On a shared (PostgreSQL) store instances *claim* queued jobs (:meth:`JobStore.claim`) and hold a
lease on them (:meth:`JobStore.renew`); see :mod:`f5vi.jobs.sharing`. On SQLite one process owns the
file and :meth:`JobStore.recover` repairs it at start-up instead.

The store is synchronous and thread-safe (one connection behind a lock, see
:mod:`f5vi.jobs.database` and :mod:`f5vi.jobs.pg_database`). The asyncio side calls it through a
worker thread so a slow disk or network never stalls the event loop.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from f5vi.jobs.database import Database, DatabaseError
from f5vi.jobs.models import Job, JobRequest, JobResult
from f5vi.jobs.pg_database import PostgresDatabase
from f5vi.jobs.states import ACTIVE_STATES, InvalidTransitionError, JobState, check_transition

_JOBS_V1 = """
CREATE TABLE IF NOT EXISTS jobs (
    seq               {serial},
    id                TEXT    NOT NULL UNIQUE,
    kind              TEXT    NOT NULL,
    state             TEXT    NOT NULL,
    request           TEXT    NOT NULL,
    request_hash      TEXT    NOT NULL,
    idempotency_key   TEXT    UNIQUE,
    output_filename   TEXT    NOT NULL UNIQUE,
    confirm_token     TEXT    NOT NULL,
    created_at        {real}  NOT NULL,
    updated_at        {real}  NOT NULL,
    started_at        {real},
    finished_at       {real},
    attempts          INTEGER NOT NULL DEFAULT 0,
    progress          {real}  NOT NULL DEFAULT 0,
    stage             TEXT,
    chunk_index       INTEGER,
    chunk_count       INTEGER,
    eta_seconds       {real},
    error_code        TEXT,
    error_message     TEXT,
    result            TEXT,
    confirmed_at      {real},
    output_deleted_at {real}
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, seq);
CREATE INDEX IF NOT EXISTS jobs_by_finish ON jobs (finished_at);
"""
_DELIVERIES_V2 = """
CREATE TABLE IF NOT EXISTS deliveries (
    job_id     TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    record     TEXT NOT NULL,
    updated_at {real} NOT NULL
);
"""
_LEASES_V3 = """
ALTER TABLE jobs ADD COLUMN owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires_at {real};
ALTER TABLE jobs ADD COLUMN cancel_requested_at {real};
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner);
"""
_SHARED_VOICES_V4 = """
CREATE TABLE IF NOT EXISTS shared_voices (
    voice_id   TEXT PRIMARY KEY,
    digest     TEXT NOT NULL,
    audio      {blob} NOT NULL,
    transcript TEXT,
    metadata   {blob},
    updated_at {real} NOT NULL
);
"""
_STEPS = (_JOBS_V1, _DELIVERIES_V2, _LEASES_V3, _SHARED_VOICES_V4)
"""1: jobs. 2: deliveries (what a front door recorded about handing a result over). 3: owner, lease
and cancel request of a job (several instances on one PostgreSQL database). 4: uploaded voices shared
by those instances (:mod:`f5vi.jobs.shared_voices`; unused on SQLite)."""

SQLITE_MIGRATIONS = tuple(
    step.format(serial="INTEGER PRIMARY KEY AUTOINCREMENT", real="REAL", blob="BLOB") for step in _STEPS
)
POSTGRES_MIGRATIONS = tuple(
    step.format(serial="BIGSERIAL PRIMARY KEY", real="DOUBLE PRECISION", blob="BYTEA") for step in _STEPS
)
SCHEMA_VERSION = len(_STEPS)

# Columns a transition or an update may set. Everything else is fixed at creation.
_MUTABLE = frozenset(
    {
        "started_at",
        "finished_at",
        "attempts",
        "progress",
        "stage",
        "chunk_index",
        "chunk_count",
        "eta_seconds",
        "error_code",
        "error_message",
        "result",
        "confirmed_at",
        "output_deleted_at",
        "owner",
        "lease_expires_at",
        "cancel_requested_at",
    }
)

INTERRUPTED = "interrupted"
"""Error code of a job given up after restarts interrupted it ``max_attempts`` times."""


class JobNotFoundError(DatabaseError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}")
        self.job_id = job_id


class DuplicateJobError(DatabaseError):
    """A job with the same id or idempotency key exists; ``existing`` is that job."""

    def __init__(self, existing: Job) -> None:
        super().__init__(f"job {existing.id!r} already exists")
        self.existing = existing


class LeaseLostError(InvalidTransitionError):
    """This instance no longer owns the job (its lease expired and another instance took it over):
    the change is not written, so a job never completes twice."""

    def __init__(self, job_id: str, current: JobState, target: JobState, owner: str | None) -> None:
        super().__init__(job_id, current, target)
        self.owner = owner


@dataclass(frozen=True)
class RecoveryReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    """Every job to run, oldest first (previously queued and re-queued ones together)."""


@dataclass(frozen=True)
class ClaimReport:
    claimed: list[Job] = field(default_factory=list)
    """Queued jobs now owned by the claimer, oldest first (re-queued takeovers among them)."""
    ended: list[Job] = field(default_factory=list)
    """Jobs the claim finished instead: expired too often (failed) or killed while nobody ran them."""


@dataclass(frozen=True)
class RenewReport:
    owned: list[str] = field(default_factory=list)
    """Active jobs still owned (lease extended)."""
    cancel_requested: list[str] = field(default_factory=list)
    """Of those, the ones another instance was asked to kill."""


def _open_database(target: str | Path, exclusive: bool) -> Database | PostgresDatabase:
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(text, POSTGRES_MIGRATIONS, name="job database")
    path = Path(text.removeprefix("sqlite:///")) if text.startswith("sqlite:///") else Path(target)
    return Database(path, SQLITE_MIGRATIONS, exclusive=exclusive, name="job database")


class JobStore:
    """The job table on SQLite (a path or ``sqlite:///path``) or PostgreSQL (``postgresql://...``).

    ``clock`` is injectable so retention and leases can be tested without sleeping.
    """

    def __init__(
        self, target: str | Path, *, clock: Callable[[], float] = time.time, exclusive: bool = True
    ) -> None:
        self._clock = clock
        self._database = _open_database(target, exclusive)
        self.path = getattr(self._database, "path", None)

    @property
    def shared(self) -> bool:
        """Other processes use the same table (PostgreSQL): jobs are claimed, not recovered."""
        return self._database.shared

    @property
    def backend(self) -> str:
        return "postgresql" if self.shared else "sqlite"

    def schema_version(self) -> int:
        return self._database.schema_version()

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> JobStore:
        self._database.open()
        return self

    def close(self) -> None:
        self._database.close()

    def __enter__(self) -> JobStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _lock(self) -> threading.RLock:
        return self._database.lock

    @property
    def _db(self) -> Any:
        return self._database.connection

    def _transaction(self) -> AbstractContextManager[Any]:
        return self._database.transaction()

    def _notify(self, conn: Any, event: str, job_id: str) -> None:
        self._database.notify(conn, event, job_id)

    # ------------------------------------------------------------------ create / read
    def create(
        self,
        *,
        job_id: str,
        kind: str,
        request: JobRequest,
        output_filename: str,
        confirm_token: str,
        idempotency_key: str | None = None,
    ) -> Job:
        """Insert a queued job. Raises :class:`DuplicateJobError` with the existing job if the id or
        the idempotency key is taken (atomically: two racing submissions, on one instance or two,
        cannot both win: the loser's insert hits the unique index and it returns the winner)."""
        now = self._clock()
        try:
            with self._transaction() as conn:
                existing = self._find_duplicate(conn, job_id, idempotency_key)
                if existing is not None:
                    raise DuplicateJobError(existing)
                conn.execute(
                    "INSERT INTO jobs (id, kind, state, request, request_hash, idempotency_key,"
                    " output_filename, confirm_token, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        job_id,
                        kind,
                        JobState.QUEUED.value,
                        request.to_json(),
                        request.fingerprint(),
                        idempotency_key,
                        output_filename,
                        confirm_token,
                        now,
                        now,
                    ),
                )
                self._notify(conn, "new", job_id)
                return self._get(conn, job_id)
        except DatabaseError:
            raise
        except Exception as exc:
            if not self._database.is_unique_violation(exc):
                raise
            with self._lock:
                existing = self._find_duplicate(self._db, job_id, idempotency_key)
            if existing is None:
                raise
            raise DuplicateJobError(existing) from None

    def _find_duplicate(self, conn: Any, job_id: str, key: str | None) -> Job | None:
        found = _find(conn, "idempotency_key", key) if key is not None else None
        return found or _find(conn, "id", job_id)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return _find(self._db, "id", job_id)

    def get_by_idempotency_key(self, key: str) -> Job | None:
        with self._lock:
            return _find(self._db, "idempotency_key", key)

    def find_by_output(self, filename: str) -> Job | None:
        with self._lock:
            return _find(self._db, "output_filename", filename)

    def counts(self) -> dict[JobState, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        counts = dict.fromkeys(JobState, 0)
        for row in rows:
            counts[JobState(row[0])] = int(row[1])
        return counts

    # ------------------------------------------------------------------ state changes
    def transition(
        self,
        job_id: str,
        target: JobState,
        *,
        expected: Iterable[JobState] | None = None,
        owner: str | None = None,
        **changes: Any,
    ) -> Job:
        """Move a job to ``target`` (and set ``changes``) if the state machine allows it.

        ``expected`` narrows the states the caller believes the job is in; a job found in another
        state raises :class:`~f5vi.jobs.states.InvalidTransitionError` and nothing is written. With
        ``owner`` the job must still be owned by that instance (else :class:`LeaseLostError`). Going
        to a terminal state stamps ``finished_at`` and ends the lease; going back to ``queued``
        gives the job up (no owner); leaving ``queued`` for ``running`` stamps ``started_at`` and
        counts an attempt.
        """
        unknown = set(changes) - _MUTABLE
        if unknown:
            raise ValueError(f"cannot set {sorted(unknown)} in a transition")
        now = self._clock()
        with self._transaction() as conn:
            current = self._get(conn, job_id, lock=True)
            allowed = set(expected) if expected is not None else None
            if owner is not None and current.owner != owner:
                raise LeaseLostError(job_id, current.state, target, current.owner)
            if allowed is not None and current.state not in allowed:
                raise InvalidTransitionError(job_id, current.state, target)
            check_transition(job_id, current.state, target)
            values = dict(changes)
            if target is JobState.RUNNING:
                values.setdefault("started_at", now)
                values.setdefault("attempts", current.attempts + 1)
            if target is JobState.QUEUED:
                values.update(owner=None, lease_expires_at=None)
            if target.is_terminal:
                values.setdefault("finished_at", now)
                values.setdefault("eta_seconds", None)
                values["lease_expires_at"] = None
            if target is JobState.SUCCEEDED:
                values["progress"] = 100.0
            elif "progress" in values:
                values["progress"] = max(float(values["progress"]), current.progress)
            self._write(conn, job_id, {"state": target.value, "updated_at": now, **values})
            self._notify(conn, "change", job_id)
            return self._get(conn, job_id)

    def update_progress(
        self,
        job_id: str,
        *,
        progress: float,
        stage: str | None,
        chunk_index: int | None,
        chunk_count: int | None,
        eta_seconds: float | None,
        owner: str | None = None,
    ) -> bool:
        """Persist progress of a running job; never lowers the stored value. False if not running
        (or, with ``owner``, no longer owned by it)."""
        value = float(progress)
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE jobs SET progress = CASE WHEN progress > ? THEN progress ELSE ? END, stage = ?,"
                " chunk_index = ?, chunk_count = ?, eta_seconds = ?, updated_at = ?"
                " WHERE id = ? AND state = ?" + (" AND owner = ?" if owner is not None else ""),
                (
                    value,
                    value,
                    stage,
                    chunk_index,
                    chunk_count,
                    eta_seconds,
                    self._clock(),
                    job_id,
                    JobState.RUNNING.value,
                    *((owner,) if owner is not None else ()),
                ),
            )
            written = cur.rowcount == 1
            if written:
                self._notify(conn, "change", job_id)
            return written

    def confirm_download(self, job_id: str) -> Job:
        """Stamp ``confirmed_at`` once (repeat confirmations keep the first time)."""
        now = self._clock()
        with self._transaction() as conn:
            self._get(conn, job_id, lock=True)
            conn.execute(
                "UPDATE jobs SET confirmed_at = COALESCE(confirmed_at, ?), updated_at = ? WHERE id = ?",
                (now, now, job_id),
            )
            self._notify(conn, "change", job_id)
            return self._get(conn, job_id)

    def mark_output_deleted(self, job_id: str) -> Job:
        now = self._clock()
        with self._transaction() as conn:
            self._get(conn, job_id, lock=True)
            conn.execute(
                "UPDATE jobs SET output_deleted_at = COALESCE(output_deleted_at, ?), updated_at = ?"
                " WHERE id = ?",
                (now, now, job_id),
            )
            return self._get(conn, job_id)

    # ------------------------------------------------------------------ work sharing
    def claim(self, owner: str, *, limit: int, lease_seconds: float, max_attempts: int) -> ClaimReport:
        """Take up to ``limit`` jobs nobody holds, oldest first, for ``owner`` until the lease ends.

        Candidates are queued jobs without a live lease and running jobs whose owner's lease expired
        (that instance died or hung). PostgreSQL picks them with ``FOR UPDATE SKIP LOCKED``, so
        instances claiming at once never take the same row and never wait for each other. A taken
        over running job goes back to ``queued`` (its attempt was counted when it started), or fails
        ``interrupted`` once it has been started ``max_attempts`` times; one whose kill was asked
        while nobody ran it ends ``cancelled``. At-least-once: a job may *start* more than once,
        but only its owner can finish it (:meth:`transition` with ``owner``).
        """
        if limit <= 0:
            return ClaimReport()
        now = self._clock()
        claimed: list[Job] = []
        ended: list[Job] = []
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM jobs WHERE (state = ? AND (owner IS NULL OR lease_expires_at < ?))"
                " OR (state = ? AND lease_expires_at < ?) ORDER BY seq LIMIT ?" + self._database.skip_locked,
                (JobState.QUEUED.value, now, JobState.RUNNING.value, now, int(limit)),
            ).fetchall()
            for row in rows:
                job = _row_to_job(row)
                reset = {"stage": None, "chunk_index": None, "chunk_count": None, "eta_seconds": None}
                if job.cancel_requested_at is not None:
                    values: dict[str, Any] = {
                        "state": JobState.CANCELLED.value,
                        "finished_at": now,
                        "eta_seconds": None,
                        "lease_expires_at": None,
                        "error_code": "cancelled",
                        "error_message": "cancelled by request",
                    }
                elif job.state is JobState.RUNNING and job.attempts >= max_attempts:
                    values = {
                        "state": JobState.FAILED.value,
                        "finished_at": now,
                        "eta_seconds": None,
                        "lease_expires_at": None,
                        "error_code": INTERRUPTED,
                        "error_message": (
                            f"the instance running this job stopped answering, {job.attempts} times;"
                            " not retrying again"
                        ),
                    }
                else:
                    values = {
                        "state": JobState.QUEUED.value,
                        "owner": owner,
                        "lease_expires_at": now + lease_seconds,
                    }
                    if job.state is JobState.RUNNING:
                        values.update(reset)
                self._write(conn, job.id, {**values, "updated_at": now})
                self._notify(conn, "change", job.id)
                updated = self._get(conn, job.id)
                (ended if updated.is_terminal else claimed).append(updated)
        return ClaimReport(claimed=claimed, ended=ended)

    def renew(self, owner: str, job_ids: Iterable[str], *, lease_seconds: float) -> RenewReport:
        """Extend ``owner``'s lease on the given active jobs (the ones it really holds in memory) and
        say which of them it still owns and which a kill was asked for. Rows owned under the same
        name but not listed (a restarted instance with a fixed ``F5VI_INSTANCE_ID``) are left to expire
        and be taken over, so no job is held by a name that no longer runs it."""
        ids = sorted(set(job_ids))
        if not ids:
            return RenewReport()
        now = self._clock()
        marks = ", ".join("?" * len(ids))
        active = (JobState.QUEUED.value, JobState.RUNNING.value)
        with self._transaction() as conn:
            conn.execute(
                "UPDATE jobs SET lease_expires_at = ? WHERE owner = ? AND state IN (?, ?)"
                f" AND id IN ({marks})",
                (now + lease_seconds, owner, *active, *ids),
            )
            rows = conn.execute(
                "SELECT id, cancel_requested_at FROM jobs WHERE owner = ? AND state IN (?, ?)"
                f" AND id IN ({marks}) ORDER BY seq",
                (owner, *active, *ids),
            ).fetchall()
        return RenewReport(
            owned=[r[0] for r in rows], cancel_requested=[r[0] for r in rows if r[1] is not None]
        )

    def release(self, owner: str, job_ids: Iterable[str]) -> int:
        """Give back claimed jobs that have not started (a stopping instance): others take them at once."""
        ids = list(job_ids)
        with self._transaction() as conn:
            n = 0
            for job_id in ids:
                cur = conn.execute(
                    "UPDATE jobs SET owner = NULL, lease_expires_at = NULL"
                    " WHERE id = ? AND owner = ? AND state = ?",
                    (job_id, owner, JobState.QUEUED.value),
                )
                if cur.rowcount == 1:
                    n += 1
                    self._notify(conn, "new", job_id)
        return n

    def request_cancel(self, job_id: str) -> Job:
        """A kill of a job this instance does not run: cancel it here if nobody holds it, otherwise
        record the request for its owner (told through ``NOTIFY``, and its lease renewals)."""
        now = self._clock()
        with self._transaction() as conn:
            job = self._get(conn, job_id, lock=True)
            if job.is_terminal:
                return job
            unheld = job.owner is None or (job.lease_expires_at is not None and job.lease_expires_at < now)
            if job.state is JobState.QUEUED and unheld:
                values: dict[str, Any] = {
                    "state": JobState.CANCELLED.value,
                    "finished_at": now,
                    "eta_seconds": None,
                    "lease_expires_at": None,
                    "error_code": "cancelled",
                    "error_message": "cancelled by request before it started",
                }
                event = "change"
            else:
                values = {"cancel_requested_at": job.cancel_requested_at or now}
                event = "cancel"
            self._write(conn, job_id, {**values, "updated_at": now})
            self._notify(conn, event, job_id)
            return self._get(conn, job_id)

    # ------------------------------------------------------------------ deliveries
    def get_delivery(self, job_id: str) -> dict[str, Any] | None:
        """The JSON record a front door keeps about handing the job's result over (webhook state)."""
        with self._lock:
            row = self._db.execute("SELECT record FROM deliveries WHERE job_id = ?", (job_id,)).fetchone()
        return json.loads(row[0]) if row is not None else None

    def put_delivery(self, job_id: str, record: dict[str, Any], *, replace: bool = True) -> bool:
        """Store the record (``replace=False``: only if the job has none yet). False: nothing written."""
        action = (
            "DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at"
            if replace
            else "DO NOTHING"
        )
        with self._transaction() as conn:
            self._get(conn, job_id, lock=True)
            cur = conn.execute(
                "INSERT INTO deliveries (job_id, record, updated_at) VALUES (?, ?, ?)"
                f" ON CONFLICT (job_id) {action}",
                (job_id, json.dumps(record, ensure_ascii=False, sort_keys=True), self._clock()),
            )
            return cur.rowcount == 1

    # ------------------------------------------------------------------ restart & retention
    def recover(self, *, max_attempts: int = 2) -> RecoveryReport:
        """Repair the table after an unclean stop, before any job runs.

        A job found ``running`` was interrupted: it goes back to ``queued`` if it has been started
        fewer than ``max_attempts`` times, otherwise it fails with code ``interrupted``. Its progress
        is kept (progress never goes backwards; the rerun only moves it once it gets further).
        """
        now = self._clock()
        requeued: list[str] = []
        failed: list[str] = []
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM jobs WHERE state = ? ORDER BY seq" + self._database.for_update,
                (JobState.RUNNING.value,),
            ).fetchall()
            for row in rows:
                job = _row_to_job(row)
                if job.attempts < max_attempts:
                    self._write(
                        conn,
                        job.id,
                        {
                            "state": JobState.QUEUED.value,
                            "updated_at": now,
                            "stage": None,
                            "chunk_index": None,
                            "chunk_count": None,
                            "eta_seconds": None,
                        },
                    )
                    requeued.append(job.id)
                else:
                    self._write(
                        conn,
                        job.id,
                        {
                            "state": JobState.FAILED.value,
                            "updated_at": now,
                            "finished_at": now,
                            "eta_seconds": None,
                            "error_code": INTERRUPTED,
                            "error_message": (
                                f"the server stopped while this job was running, {job.attempts} times;"
                                " not retrying again"
                            ),
                        },
                    )
                    failed.append(job.id)
            queued = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM jobs WHERE state = ? ORDER BY seq", (JobState.QUEUED.value,)
                ).fetchall()
            ]
        return RecoveryReport(requeued=requeued, failed=failed, queued=queued)

    def outputs_to_expire(self, *, now: float, ttl_seconds: float, confirmed_ttl_seconds: float) -> list[Job]:
        """Finished jobs whose output is still stored and past its retention."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE output_deleted_at IS NULL AND finished_at IS NOT NULL"
                " AND (finished_at <= ? OR (confirmed_at IS NOT NULL AND confirmed_at <= ?)) ORDER BY seq",
                (now - ttl_seconds, now - confirmed_ttl_seconds),
            ).fetchall()
        return [_row_to_job(r) for r in rows]

    def purge_finished(self, *, before: float) -> list[str]:
        """Delete records of terminal jobs finished before ``before`` whose output is gone."""
        terminal = [s.value for s in JobState if s not in ACTIVE_STATES]
        with self._transaction() as conn:
            rows = conn.execute(
                f"SELECT id FROM jobs WHERE state IN ({','.join('?' * len(terminal))})"
                " AND finished_at IS NOT NULL AND finished_at < ?"
                " AND (output_deleted_at IS NOT NULL OR state != ?)",
                (*terminal, before, JobState.SUCCEEDED.value),
            ).fetchall()
            ids = [r[0] for r in rows]
            conn.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in ids])
        return ids

    def known_output_filenames(self) -> set[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT output_filename FROM jobs WHERE output_deleted_at IS NULL"
            ).fetchall()
        return {r[0] for r in rows}

    # ------------------------------------------------------------------ helpers
    def _get(self, conn: Any, job_id: str, *, lock: bool = False) -> Job:
        """The job (``lock``: and its row locked until the transaction ends, on PostgreSQL)."""
        job = _find(conn, "id", job_id, self._database.for_update if lock else "")
        if job is None:
            raise JobNotFoundError(job_id)
        return job

    @staticmethod
    def _write(conn: Any, job_id: str, values: dict[str, Any]) -> None:
        if "result" in values and isinstance(values["result"], JobResult):
            values["result"] = values["result"].to_json()
        columns = ", ".join(f"{name} = ?" for name in values)
        conn.execute(f"UPDATE jobs SET {columns} WHERE id = ?", (*values.values(), job_id))


_UNIQUE_COLUMNS = frozenset({"id", "idempotency_key", "output_filename"})


def _find(conn: Any, column: str, value: str, suffix: str = "") -> Job | None:
    """The job whose unique ``column`` equals ``value`` (the column name is never user input)."""
    assert column in _UNIQUE_COLUMNS
    row = conn.execute(f"SELECT * FROM jobs WHERE {column} = ?{suffix}", (value,)).fetchone()
    return _row_to_job(row) if row is not None else None


def _row_to_job(row: Any) -> Job:
    data = dict(row)
    data["state"] = JobState(data["state"])
    data["request"] = JobRequest.from_json(data["request"])
    data["result"] = JobResult.from_json(data["result"]) if data["result"] else None
    return Job(**data)
