"""One PostgreSQL database shared by several f5vi instances (psycopg 3), used like the SQLite one.

:class:`PostgresDatabase` has the interface of :class:`~f5vi.jobs.database.Database` so
:class:`~f5vi.jobs.store.JobStore` runs the same SQL on both: statements are written with ``?``
placeholders (translated to ``%s`` here) and rows read like ``sqlite3.Row`` (by index or name).
Differences the store must know about are attributes: ``shared`` (other processes write the same
table, so a job's owner and lease matter), ``for_update`` (row locks; SQLite's ``BEGIN IMMEDIATE``
already serialises writers) and :meth:`notify` (``pg_notify``, sent when the transaction commits).

Schema migrations run under a transaction-scoped advisory lock, so instances starting together
migrate once; the version lives in table ``f5vi_schema``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from f5vi.jobs.database import DatabaseError

NOTIFY_CHANNEL = "f5vi_jobs"
"""``LISTEN`` channel; the payload is ``<event>:<job id>`` (events: ``new``, ``change``, ``cancel``)."""

_MIGRATION_LOCK = 0x7F5F1
"""Advisory lock key held while the schema is created or upgraded."""


class Row:
    """A result row readable by column index and by name, and convertible with ``dict(row)``."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: Sequence[str], values: Sequence[Any]) -> None:
        self._names = names
        self._values = values

    def keys(self) -> Sequence[str]:
        return self._names

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, int):
            return self._values[key]
        return self._values[self._names.index(key)]


def _row_factory(cursor: Any) -> Any:
    names = [c.name for c in cursor.description] if cursor.description else []
    return lambda values: Row(names, values)


class _Connection:
    """What the store calls on a connection: ``execute`` with ``?`` placeholders, ``executemany``."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql.replace("?", "%s"), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])


class PostgresDatabase:
    shared = True
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, migrations: Sequence[str], *, name: str) -> None:
        self.url = url
        self.lock = threading.RLock()
        self._migrations = migrations
        self._name = name
        self._conn: Any = None

    def open(self) -> None:
        """Connect, refuse a schema newer than ours, apply the missing migrations."""
        import psycopg

        with self.lock:
            if self._conn is not None:
                return
            try:
                conn = psycopg.connect(self.url, autocommit=True, row_factory=_row_factory)
            except psycopg.Error as exc:
                raise DatabaseError(f"cannot connect to the {self._name} (F5VI_DATABASE_URL): {exc}") from exc
            try:
                self._migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn

    def _migrate(self, conn: Any) -> None:
        target = len(self._migrations)
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS f5vi_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM f5vi_schema").fetchone()
            found = int(row[0]) if row is not None else 0
            if found > target:
                raise DatabaseError(f"{self._name} schema {found} is newer than this f5vi ({target})")
            for step in self._migrations[found:]:
                conn.execute(step)
            if row is None:
                conn.execute("INSERT INTO f5vi_schema (version) VALUES (%s)", (target,))
            else:
                conn.execute("UPDATE f5vi_schema SET version = %s", (target,))

    def schema_version(self) -> int:
        with self.lock:
            row = self.connection.execute("SELECT version FROM f5vi_schema").fetchone()
            return int(row[0])

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def connection(self) -> _Connection:
        if self._conn is None:
            raise DatabaseError(f"{self._name} is not open")
        return _Connection(self._conn)

    @contextmanager
    def transaction(self) -> Iterator[_Connection]:
        with self.lock:
            if self._conn is None:
                raise DatabaseError(f"{self._name} is not open")
            with self._conn.transaction():
                yield _Connection(self._conn)

    @staticmethod
    def notify(conn: _Connection, event: str, job_id: str) -> None:
        conn.execute("SELECT pg_notify(?, ?)", (NOTIFY_CHANNEL, f"{event}:{job_id}"))

    @staticmethod
    def is_unique_violation(exc: BaseException) -> bool:
        import psycopg.errors

        return isinstance(exc, psycopg.errors.UniqueViolation)
