"""One error shape for every failure: ``{"error": {"code", "message"[, "details"]}}``.

Domain errors (jobs, voices, engine, storage) keep their own ``code``; this module only decides the
HTTP status. FastAPI's own errors (422 validation, 404 unknown route, 405, 413) are reshaped too.
Messages never carry tracebacks or absolute server paths: anything that looks like one is cut down
to its last component.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from f5vi.engine.errors import (
    EngineError,
    InvalidParameterError,
    InvalidReferenceError,
    InvalidTextError,
    ModelLoadError,
    SynthesisCancelled,
)
from f5vi.jobs import errors as job_errors
from f5vi.storage import InvalidFilenameError
from f5vi.voices import errors as voice_errors

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """Raise from a route to answer with the error shape."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = list(details) if details is not None else None


# Absolute POSIX paths (not URL paths: no ':' or '/' or word character right before the slash).
_ABS_PATH_RE = re.compile(r"(?<![\w:/.])/(?:[^\s'\"/]+/)+([^\s'\"/]*)")


def scrub(message: str) -> str:
    """Replace absolute paths by their last component so responses never reveal server layout."""
    return _ABS_PATH_RE.sub(lambda m: m.group(1) or "<dir>", message)


def error_body(code: str, message: str, details: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": scrub(message)}
    if details:
        error["details"] = [dict(d) for d in details]
    return {"error": error}


def error_response(
    status_code: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    details: Sequence[Mapping[str, Any]] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(code, message, details), status_code=status_code, headers=dict(headers or {})
    )


def status_for(exc: Exception) -> tuple[int, dict[str, str]]:
    """HTTP status (and headers) for a domain error."""
    if isinstance(exc, job_errors.QueueFullError):
        return 429, {"Retry-After": str(exc.retry_after_seconds)}
    if isinstance(exc, job_errors.ServiceUnavailableError):
        headers = {"Retry-After": str(exc.retry_after_seconds)} if exc.retry_after_seconds else {}
        return 503, headers
    table: list[tuple[type[Exception], int]] = [
        (job_errors.UnknownJobError, 404),
        (job_errors.InvalidJobIdError, 422),
        (job_errors.JobConflictError, 409),
        (job_errors.JobFinishedError, 409),
        (job_errors.JobNotSucceededError, 409),
        (job_errors.InvalidConfirmationTokenError, 403),
        (voice_errors.VoiceNotFoundError, 404),
        (voice_errors.InvalidVoiceNameError, 400),
        (voice_errors.VoiceExistsError, 409),
        (voice_errors.VoiceUploadTooLargeError, 413),
        (voice_errors.InvalidVoiceUploadError, 422),
        (voice_errors.TranscriptionUnavailableError, 422),
        (voice_errors.VoiceUnreadableError, 500),
        (InvalidFilenameError, 400),
        (InvalidTextError, 422),
        (InvalidParameterError, 422),
        (InvalidReferenceError, 422),
        (ModelLoadError, 503),
        (SynthesisCancelled, 409),
    ]
    for kind, status in table:
        if isinstance(exc, kind):
            return status, {}
    return 500, {}


def _code_and_message(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, InvalidFilenameError):
        return "invalid_filename", "invalid file name"
    code = getattr(exc, "code", "internal_error")
    message = getattr(exc, "message", None) or str(exc)
    return str(code), str(message)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    status, headers = status_for(exc)
    code, message = _code_and_message(exc)
    if status >= 500 and status != 503:
        logger.error("%s %s failed: %s: %s", request.method, request.url.path, code, message)
        message = "internal server error"
    return error_response(status, code, message, headers=headers)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.code, exc.message, headers=exc.headers, details=exc.details)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    429: "too_many_requests",
}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error")
    if status == 404:
        message = "not found"
    elif status == 405:
        message = f"method {request.method} is not allowed here"
    elif status == 413:
        message = "request body is too large"
    else:
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(status, code, message, headers=exc.headers)


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "form"):
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "invalid_json", "request body is not valid JSON")
    details = [
        {
            "field": _field_name(e.get("loc", ())),
            "message": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in errors
    ]
    if len(errors) == 1 and tuple(errors[0].get("loc", ())) == ("body",):
        first = "request body: " + details[0]["message"]
    else:
        first = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3])
    return error_response(422, "validation_error", first or "invalid request", details=details)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for kind in (
        job_errors.JobError,
        voice_errors.VoiceLibraryError,
        EngineError,
        InvalidFilenameError,
    ):
        app.add_exception_handler(kind, _domain_error)
    app.add_exception_handler(Exception, _unhandled)
