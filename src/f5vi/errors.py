"""One base for every error f5vi raises on purpose: a stable code, an HTTP status, a safe message.

The engine, the voice library, storage and the job system each have their own error classes, all
derived from :class:`F5viError`, so every front door (HTTP, RunPod, CLI) answers any of them the same
way: ``code`` and ``message`` go to the client, ``http_status`` says how serious it is. Anything that
is not an ``F5viError`` is a bug and reaches clients only as :class:`InternalError`.

This module imports nothing of f5vi: it sits below the engine.
"""

from __future__ import annotations

import errno
import re
import sqlite3


class F5viError(Exception):
    """An error with a stable machine-readable ``code`` and a message that is safe to show.

    Subclasses declare both in their class line: ``class VoiceNotFoundError(VoiceLibraryError,
    code="voice_not_found", http_status=404)``; a subclass that names neither inherits its parent's.
    """

    code: str = "error"
    http_status: int = 500

    def __init_subclass__(
        cls, *, code: str | None = None, http_status: int | None = None, **kw: object
    ) -> None:
        super().__init_subclass__(**kw)
        if code is not None:
            cls.code = code
        if http_status is not None:
            cls.http_status = http_status

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers that belong with the answer (``Retry-After`` for 429/503)."""
        return {}

    @property
    def is_internal(self) -> bool:
        """A fault of the server (5xx other than 503): log it, do not show its message."""
        return self.http_status >= 500 and self.http_status not in (503, 507)


class InternalError(F5viError, code="internal_error"):
    """Something failed that was not expected to; the details are in the server log only."""


class InsufficientStorageError(F5viError, code="insufficient_storage", http_status=507):
    """A disk (the data directory: job database, uploaded voices; or the output directory) is full.

    Nothing was half-written; the same request succeeds once space is freed, hence ``Retry-After``.
    """

    retry_after_seconds = 30

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


SQLITE_FULL = 13
"""SQLite's "database or disk is full" (also what ``PRAGMA max_page_count`` gives when reached)."""
SQLSTATE_DISK_FULL = "53100"
"""PostgreSQL's ``disk_full`` (psycopg errors carry ``sqlstate``)."""


def is_out_of_space(exc: BaseException) -> bool:
    """Is ``exc`` (or what caused it) a full disk, quota or database?"""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(current, sqlite3.Error) and (
            getattr(current, "sqlite_errorcode", None) == SQLITE_FULL
            or "database or disk is full" in str(current)
        ):
            return True
        if getattr(current, "sqlstate", None) == SQLSTATE_DISK_FULL:
            return True
        current = current.__cause__ or current.__context__
    return False


def as_f5vi_error(exc: BaseException) -> F5viError:
    """``exc`` itself if it is one of ours, else an :class:`InternalError` naming only its type."""
    if isinstance(exc, F5viError):
        return exc
    return InternalError(f"synthesis failed unexpectedly ({type(exc).__name__}); see the server log")


# Absolute POSIX paths (not URL paths: no ':' or '/' or word character right before the slash).
_ABS_PATH_RE = re.compile(r"(?<![\w:/.])/(?:[^\s'\"/]+/)+([^\s'\"/]*)")


_HTTP_METHOD_BEFORE = re.compile(r"\b(?:GET|POST|PUT|PATCH|DELETE|HEAD) $")
"""An API route named in a message (``GET /v1/models``) is not a server path: it is kept."""


def scrub(message: str) -> str:
    """Replace absolute paths by their last component so messages never reveal the server's layout.
    API routes after an HTTP method (``GET /v1/models``) stay, since they tell the client what to do."""

    def replace(match: re.Match[str]) -> str:
        if _HTTP_METHOD_BEFORE.search(message, 0, match.start()):
            return match.group(0)
        return match.group(1) or "<dir>"

    return _ABS_PATH_RE.sub(replace, message)
