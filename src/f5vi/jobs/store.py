"""Durable job table on SQLite (WAL).

Every state change is one ``BEGIN IMMEDIATE`` transaction that reads the current state, checks the
transition against :mod:`f5vi.jobs.states`, and writes the new row; callers announce a change only
after the method returned, so whatever a client has seen survives a crash (``synchronous=FULL``).

The store is synchronous and thread-safe (one connection behind a lock). The asyncio side calls it
through a worker thread so a slow disk never stalls the event loop.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from f5vi.jobs.models import Job, JobRequest, JobResult
from f5vi.jobs.states import ACTIVE_STATES, InvalidTransitionError, JobState, check_transition

SCHEMA_VERSION = 1

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


class JobStoreError(Exception):
    pass


class JobNotFoundError(JobStoreError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}")
        self.job_id = job_id


class DuplicateJobError(JobStoreError):
    """A job with the same id or idempotency key exists; ``existing`` is that job."""

    def __init__(self, existing: Job) -> None:
        super().__init__(f"job {existing.id!r} already exists")
        self.existing = existing


class StoreLockedError(JobStoreError):
    """Another process holds the data directory; two servers must never share one job table."""


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
        self._exclusive = exclusive
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> JobStore:
        with self._lock:
            if self._conn is not None:
                return self
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._exclusive:
                self._acquire_process_lock()
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=ON")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise JobStoreError(
                        f"job database schema {version} is newer than this f5vi ({SCHEMA_VERSION})"
                    )
                conn.executescript(_SCHEMA)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            except BaseException:
                self._release_process_lock()
                raise
            self._conn = conn
        return self

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._release_process_lock()

    def __enter__(self) -> JobStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _acquire_process_lock(self) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLockedError(
                f"the job database {self.path.name} is in use by another process (same data_dir)"
            ) from None
        self._lock_fd = fd

    def _release_process_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JobStoreError("job store is not open")
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._db
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

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
        if key is not None:
            row = conn.execute("SELECT * FROM jobs WHERE idempotency_key = ?", (key,)).fetchone()
            if row is not None:
                return _row_to_job(row)
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_to_job(row) if row is not None else None

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_to_job(row) if row is not None else None

    def get_by_idempotency_key(self, key: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE idempotency_key = ?", (key,)).fetchone()
        return _row_to_job(row) if row is not None else None

    def find_by_output(self, filename: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE output_filename = ?", (filename,)).fetchone()
        return _row_to_job(row) if row is not None else None

    def list(self, states: Iterable[JobState] | None = None, *, limit: int | None = None) -> list[Job]:
        """Jobs oldest first (submission order), optionally only those in ``states``."""
        sql = "SELECT * FROM jobs"
        params: list[Any] = []
        if states is not None:
            wanted = [JobState(s).value for s in states]
            sql += f" WHERE state IN ({','.join('?' * len(wanted))})"
            params.extend(wanted)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [_row_to_job(r) for r in rows]

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
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(job_id)
        return _row_to_job(row)

    @staticmethod
    def _write(conn: sqlite3.Connection, job_id: str, values: dict[str, Any]) -> None:
        if "result" in values and isinstance(values["result"], JobResult):
            values["result"] = values["result"].to_json()
        columns = ", ".join(f"{name} = ?" for name in values)
        conn.execute(f"UPDATE jobs SET {columns} WHERE id = ?", (*values.values(), job_id))


def _row_to_job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        seq=row["seq"],
        kind=row["kind"],
        state=JobState(row["state"]),
        request=JobRequest.from_json(row["request"]),
        request_hash=row["request_hash"],
        idempotency_key=row["idempotency_key"],
        output_filename=row["output_filename"],
        confirm_token=row["confirm_token"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        attempts=row["attempts"],
        progress=row["progress"],
        stage=row["stage"],
        chunk_index=row["chunk_index"],
        chunk_count=row["chunk_count"],
        eta_seconds=row["eta_seconds"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        result=JobResult.from_json(row["result"]) if row["result"] else None,
        confirmed_at=row["confirmed_at"],
        output_deleted_at=row["output_deleted_at"],
    )
