"""One SQLite file, used safely: WAL, ``synchronous=FULL``, one process at a time, a schema version.

The schema is a list of migrations (step ``n`` takes version ``n-1`` to ``n``; ``PRAGMA user_version``
holds the version): opening applies the missing ones and refuses a file newer than this f5vi. The
PostgreSQL twin is :mod:`f5vi.jobs.pg_database`; attributes ``shared``, ``for_update`` and
``skip_locked`` and :meth:`Database.notify` say what differs for the store.

A second server pointed at the same data directory would interleave two engines' job tables; an
exclusive ``flock`` on ``<file>.lock`` makes that a clear start-up error instead. The connection is
shared by threads behind one re-entrant lock; :meth:`Database.transaction` is ``BEGIN IMMEDIATE``,
so a read-check-write sequence inside it cannot interleave with another writer.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class DatabaseError(Exception):
    pass


class StoreLockedError(DatabaseError):
    """Another process holds the data directory; two servers must never share one job table."""


class Database:
    shared = False
    """One process owns the file (the flock below): no other instance claims its jobs."""
    for_update = ""
    """SQLite has no row locks; ``BEGIN IMMEDIATE`` already serialises writers."""
    skip_locked = ""

    def __init__(self, path: Path, migrations: Sequence[str], *, exclusive: bool, name: str) -> None:
        self.path = Path(path)
        self.lock = threading.RLock()
        self._migrations = migrations
        self._version = len(migrations)
        self._exclusive = exclusive
        self._name = name
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None

    def open(self) -> None:
        """Connect, check the schema is not newer than ours, create or upgrade the tables."""
        with self.lock:
            if self._conn is not None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._exclusive:
                self._acquire_process_lock()
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=ON")
                found = conn.execute("PRAGMA user_version").fetchone()[0]
                if found > self._version:
                    raise DatabaseError(
                        f"{self._name} schema {found} is newer than this f5vi ({self._version})"
                    )
                for step in self._migrations[found:]:
                    conn.executescript(step)
                conn.execute(f"PRAGMA user_version={self._version}")
            except BaseException:
                self._release_process_lock()
                raise
            self._conn = conn

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._release_process_lock()

    @property
    def connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise DatabaseError(f"{self._name} is not open")
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            conn = self.connection
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # A full disk can fail the COMMIT (the transaction stays open: roll it back, or every
                # later BEGIN fails until a restart) or make SQLite roll back on its own (nothing to undo).
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def schema_version(self) -> int:
        with self.lock:
            return int(self.connection.execute("PRAGMA user_version").fetchone()[0])

    @staticmethod
    def notify(conn: sqlite3.Connection, event: str, job_id: str) -> None:
        """Nothing to tell: no other process reads this file."""

    @staticmethod
    def is_unique_violation(exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)

    def _acquire_process_lock(self) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLockedError(
                f"the {self._name} {self.path.name} is in use by another process (same data_dir)"
            ) from None
        self._lock_fd = fd

    def _release_process_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None
