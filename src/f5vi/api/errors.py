"""One error shape for every failure: ``{"error": {"code", "message"[, "details"]}}``.

Domain errors (jobs, voices, engine, storage) are :class:`~f5vi.errors.F5viError` s and carry their
own code and status. FastAPI's own errors (422 validation, 404 unknown route, 405, 413) are reshaped too.
Messages never carry tracebacks or absolute server paths: anything that looks like one is cut down
to its last component.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from f5vi.errors import F5viError, InsufficientStorageError, is_out_of_space, scrub

logger = logging.getLogger(__name__)


class ApiError(F5viError):
    """Raise from a route to answer with the error shape and a status the route chooses."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.http_status = status_code
        self._headers = dict(headers or {})
        self.details = list(details) if details is not None else None

    @property
    def headers(self) -> dict[str, str]:
        return self._headers

    def response(self) -> JSONResponse:
        body = error_body(self.code, self.message, self.details)
        return JSONResponse(body, status_code=self.http_status, headers=self.headers)


def error_body(code: str, message: str, details: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": scrub(message)}
    if details:
        error["details"] = [dict(d) for d in details]
    return {"error": error}


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, F5viError)
    message = exc.message
    if exc.is_internal:
        logger.error("%s %s failed: %s: %s", request.method, request.url.path, exc.code, message)
        message = "internal server error"
    details = exc.details if isinstance(exc, ApiError) else None
    return ApiError(exc.http_status, exc.code, message, headers=exc.headers, details=details).response()


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
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
        allow = allowed_methods(request)
        headers = {**(exc.headers or {}), **({"Allow": allow} if allow else {})}
        return ApiError(status, code, message, headers=headers).response()
    elif status == 413:
        message = "request body is too large"
    else:
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return ApiError(status, code, message, headers=exc.headers).response()


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str | None:
    """Every method some route serves at this path (Starlette's 405 names only the first route's), found
    by asking the router which methods it would route here; None when no route does (mounted apps)."""
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    return ", ".join(allowed) or None


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "form"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_message(error: Mapping[str, Any]) -> str:
    """Pydantic's message of one error, without the "Value error, " it puts before a validator's own."""
    message = str(error.get("msg", ""))
    return message.removeprefix("Value error, ") if error.get("type") == "value_error" else message


VALIDATION_CODES = frozenset({"unsupported_format"})
"""Error types a validator raises (``PydanticCustomError``) that are answered as their own code."""


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return ApiError(400, "invalid_json", "request body is not valid JSON").response()
    details = [
        {
            "field": _field_name(e.get("loc", ())),
            "message": validation_message(e),
            "type": str(e.get("type", "")),
        }
        for e in errors
    ]
    if len(errors) == 1 and tuple(errors[0].get("loc", ())) == ("body",):
        first = "request body: " + details[0]["message"]
        content_type = request.headers.get("content-type", "")
        if errors[0].get("type") == "model_attributes_type" and "json" not in content_type:
            first = "this route takes a JSON body: send JSON with 'Content-Type: application/json'" + (
                f" (not {content_type.split(';')[0]})" if content_type else ""
            )
            details[0]["message"] = first
    else:
        first = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3])
    code = errors[0].get("type") if len(errors) == 1 else None
    code = code if code in VALIDATION_CODES else "validation_error"
    return ApiError(422, str(code), first or "invalid request", details=details).response()


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    if is_out_of_space(exc):  # a full disk somewhere no typed error was raised for: still a 507
        logger.error("%s %s: no space left: %s", request.method, request.url.path, exc)
        error = InsufficientStorageError("no space left on the server's disk; free space and retry")
        return ApiError(error.http_status, error.code, error.message, headers=error.headers).response()
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return ApiError(500, "internal_error", "internal server error").response()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(F5viError, _domain_error)
    app.add_exception_handler(Exception, _unhandled)
