"""Request body size limits answered in the API's error shape.

Starlette's own limiter answers a request whose ``Content-Length`` is over the limit with a plain
text 413 even when the app would have answered JSON, so this middleware replaces it: a declared
length over the limit is refused before the app runs; a chunked body is counted while it is read
and stops with an ``HTTPException(413)`` that the app's handler turns into the error shape.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from f5vi.api.errors import ApiError


class RequestTooLargeError(HTTPException):
    def __init__(self) -> None:
        super().__init__(status_code=413, detail="request body is too large")


class BodyLimitMiddleware:
    """``limit_for(method, path)`` gives the byte limit of each request."""

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str, str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("method", "GET"), scope.get("path", "/"))
        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    response = ApiError(400, "bad_request", "invalid Content-Length header").response()
                    await response(scope, receive, send)
                    return
                break
        if declared is not None and declared > limit:
            response = ApiError(
                413, "payload_too_large", f"request body is too large (limit {limit} bytes)"
            ).response()
            await response(scope, receive, send)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLargeError()
            return message

        await self.app(scope, limited_receive, send)
