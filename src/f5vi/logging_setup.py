"""Logging: plain text by default, one JSON object per line with ``F5VI_LOG_JSON=1``.

Every record gets a ``job_id`` when one is known:

- inside :func:`log_context` (a context variable; worker threads started with
  ``anyio.to_thread.run_sync`` inherit it), e.g. a stream's id while the engine runs it;
- from ``extra={"job_id": ...}``;
- from the job manager's own messages, which all start with ``"job %s"`` and name the job first.

JSON lines carry ``ts`` (UTC ISO 8601), ``level``, ``logger``, ``message``, ``job_id`` (if any),
``exc_info`` (formatted traceback, if any) and any other ``extra`` fields.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from f5vi.config import Settings

job_id_var: ContextVar[str | None] = ContextVar("f5vi_job_id", default=None)

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "job_id", "color_message", "taskName"}
)


@contextlib.contextmanager
def log_context(job_id: str | None) -> Iterator[None]:
    """Tag every log record made inside (this task, and threads it starts) with ``job_id``."""
    token = job_id_var.set(job_id)
    try:
        yield
    finally:
        job_id_var.reset(token)


def job_id_of(record: logging.LogRecord) -> str | None:
    explicit = getattr(record, "job_id", None)
    if explicit:
        return str(explicit)
    current = job_id_var.get()
    if current:
        return current
    msg = record.msg
    if isinstance(msg, str) and msg.startswith(("job %s", "stream %s")) and record.args:
        args = record.args if isinstance(record.args, tuple) else (record.args,)
        if args and isinstance(args[0], str):
            return args[0]
    return None


class JobIdFilter(logging.Filter):
    """Sets ``record.job_id`` (None when unknown) so formatters can use it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = job_id_of(record)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job_id = job_id_of(record)
        if job_id:
            payload["job_id"] = job_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = (
                    value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
                )
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(settings: Settings) -> None:
    """Root logging for the process (replaces existing root handlers): JSON or text on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(JobIdFilter())
    handler.setFormatter(JsonFormatter() if settings.log_json else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())


def uvicorn_log_config(settings: Settings) -> dict[str, Any] | None:
    """``log_config`` for ``uvicorn.run``: its own text config, or (JSON) None after routing its
    loggers to the root JSON handler."""
    if not settings.log_json:
        from uvicorn.config import LOGGING_CONFIG

        return LOGGING_CONFIG
    configure_logging(settings)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        log = logging.getLogger(name)
        log.handlers.clear()
        log.propagate = True
    return None
