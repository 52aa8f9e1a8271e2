"""Durable job table on SQLite (WAL).

Every state change is one ``BEGIN IMMEDIATE`` transaction that reads the current state, checks the
transition against :mod:`f5vi.jobs.states`, and writes the new row; callers announce a change only
after the method returned, so whatever a client has seen survives a crash (``synchronous=FULL``).

The store is synchronous and thread-safe (one connection behind a lock, see
:mod:`f5vi.jobs.database`). The asyncio side calls it through a worker thread so a slow disk never
stalls the event loop.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from f5vi.jobs.database import Database, DatabaseError
from f5vi.jobs.models import Job, JobRequest, JobResult
from f5vi.jobs.states import ACTIVE_STATES, InvalidTransitionError, JobState, check_transition

SCHEMA_VERSION = 2
"""1: jobs. 2: deliveries (what a front door recorded about handing a result over)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT    NOT NULL UNIQUE,
    kind              TEXT    NOT NULL,
    state             TEXT    NOT NULL,
    request           TEXT    NOT NULL,
    request_hash      TEXT    NOT NULL,
    idempotency_key   TEXT    UNIQUE,
    output_filename   TEXT    NOT NULL UNIQUE,
    confirm_token     TEXT    NOT NULL,
    created_at        REAL    NOT NULL,
    updated_at        REAL    NOT NULL,
    started_at        REAL,
    finished_at       REAL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    progress          REAL    NOT NULL DEFAULT 0,
    stage             TEXT,
    chunk_index       INTEGER,
    chunk_count       INTEGER,
    eta_seconds       REAL,
    error_code        TEXT,
    error_message     TEXT,
    result            TEXT,
    confirmed_at      REAL,
    output_deleted_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, seq);
CREATE INDEX IF NOT EXISTS jobs_by_finish ON jobs (finished_at);
CREATE TABLE IF NOT EXISTS deliveries (
    job_id     TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    record     TEXT NOT NULL,
    updated_at REAL NOT NULL
);
"""

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


@dataclass(frozen=True)
class RecoveryReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    """Every job to run, oldest first (previously queued and re-queued ones together)."""


class JobStore:
    """SQLite job table. ``clock`` is injectable so retention can be tested without sleeping."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time, exclusive: bool = True) -> None:
        self.path = Path(path)
        self._clock = clock
        self._database = Database(
            self.path, _SCHEMA, SCHEMA_VERSION, exclusive=exclusive, name="job database"
        )

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
    def _db(self) -> sqlite3.Connection:
        return self._database.connection

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._database.transaction()

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
        the idempotency key is taken (atomically: two racing submissions cannot both win)."""
        now = self._clock()
        with self._transaction() as conn:
            existing = self._find_duplicate(conn, job_id, idempotency_key)
            if existing is not None:
                raise DuplicateJobError(existing)
            conn.execute(
                "INSERT INTO jobs (id, kind, state, request, request_hash, idempotency_key, output_filename,"
                " confirm_token, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            return self._get(conn, job_id)

    def _find_duplicate(self, conn: sqlite3.Connection, job_id: str, key: str | None) -> Job | None:
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
        for state, n in rows:
            counts[JobState(state)] = int(n)
        return counts

    # ------------------------------------------------------------------ state changes
    def transition(
        self,
        job_id: str,
        target: JobState,
        *,
        expected: Iterable[JobState] | None = None,
        **changes: Any,
    ) -> Job:
        """Move a job to ``target`` (and set ``changes``) if the state machine allows it.

        ``expected`` narrows the states the caller believes the job is in; a job found in another
        state raises :class:`~f5vi.jobs.states.InvalidTransitionError` and nothing is written. Going
        to a terminal state stamps ``finished_at``; leaving ``queued`` for ``running`` stamps
        ``started_at`` and counts an attempt.
        """
        unknown = set(changes) - _MUTABLE
        if unknown:
            raise ValueError(f"cannot set {sorted(unknown)} in a transition")
        now = self._clock()
        with self._transaction() as conn:
            current = self._get(conn, job_id)
            allowed = set(expected) if expected is not None else None
            if allowed is not None and current.state not in allowed:
                raise InvalidTransitionError(job_id, current.state, target)
            check_transition(job_id, current.state, target)
            values = dict(changes)
            if target is JobState.RUNNING:
                values.setdefault("started_at", now)
                values.setdefault("attempts", current.attempts + 1)
            if target.is_terminal:
                values.setdefault("finished_at", now)
                values.setdefault("eta_seconds", None)
            if target is JobState.SUCCEEDED:
                values["progress"] = 100.0
            elif "progress" in values:
                values["progress"] = max(float(values["progress"]), current.progress)
            self._write(conn, job_id, {"state": target.value, "updated_at": now, **values})
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
    ) -> bool:
        """Persist progress of a running job; never lowers the stored value. False if not running."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET progress = MAX(progress, ?), stage = ?, chunk_index = ?, chunk_count = ?,"
                " eta_seconds = ?, updated_at = ? WHERE id = ? AND state = ?",
                (
                    float(progress),
                    stage,
                    chunk_index,
                    chunk_count,
                    eta_seconds,
                    self._clock(),
                    job_id,
                    JobState.RUNNING.value,
                ),
            )
            return cur.rowcount == 1

    def confirm_download(self, job_id: str) -> Job:
        """Stamp ``confirmed_at`` once (repeat confirmations keep the first time)."""
        now = self._clock()
        with self._transaction() as conn:
            self._get(conn, job_id)
            conn.execute(
                "UPDATE jobs SET confirmed_at = COALESCE(confirmed_at, ?), updated_at = ? WHERE id = ?",
                (now, now, job_id),
            )
            return self._get(conn, job_id)

    def mark_output_deleted(self, job_id: str) -> Job:
        now = self._clock()
        with self._transaction() as conn:
            self._get(conn, job_id)
            conn.execute(
                "UPDATE jobs SET output_deleted_at = COALESCE(output_deleted_at, ?), updated_at = ?"
                " WHERE id = ?",
                (now, now, job_id),
            )
            return self._get(conn, job_id)

    # ------------------------------------------------------------------ deliveries
    def get_delivery(self, job_id: str) -> dict[str, Any] | None:
        """The JSON record a front door keeps about handing the job's result over (webhook state)."""
        with self._lock:
            row = self._db.execute("SELECT record FROM deliveries WHERE job_id = ?", (job_id,)).fetchone()
        return json.loads(row[0]) if row is not None else None

    def put_delivery(self, job_id: str, record: dict[str, Any], *, replace: bool = True) -> bool:
        """Store the record (``replace=False``: only if the job has none yet). False: nothing written."""
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        with self._transaction() as conn:
            self._get(conn, job_id)
            cur = conn.execute(
                f"{verb} INTO deliveries (job_id, record, updated_at) VALUES (?, ?, ?)",
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
                "SELECT * FROM jobs WHERE state = ? ORDER BY seq", (JobState.RUNNING.value,)
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
    def _get(self, conn: sqlite3.Connection, job_id: str) -> Job:
        job = _find(conn, "id", job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return job

    @staticmethod
    def _write(conn: sqlite3.Connection, job_id: str, values: dict[str, Any]) -> None:
        if "result" in values and isinstance(values["result"], JobResult):
            values["result"] = values["result"].to_json()
        columns = ", ".join(f"{name} = ?" for name in values)
        conn.execute(f"UPDATE jobs SET {columns} WHERE id = ?", (*values.values(), job_id))


_UNIQUE_COLUMNS = frozenset({"id", "idempotency_key", "output_filename"})


def _find(conn: sqlite3.Connection, column: str, value: str) -> Job | None:
    """The job whose unique ``column`` equals ``value`` (the column name is never user input)."""
    assert column in _UNIQUE_COLUMNS
    row = conn.execute(f"SELECT * FROM jobs WHERE {column} = ?", (value,)).fetchone()
    return _row_to_job(row) if row is not None else None


def _row_to_job(row: sqlite3.Row) -> Job:
    data = dict(row)
    data["state"] = JobState(data["state"])
    data["request"] = JobRequest.from_json(data["request"])
    data["result"] = JobResult.from_json(data["result"]) if data["result"] else None
    return Job(**data)
