"""Request body size and pace limits answered in the API's error shape.

Starlette's own limiter answers a request whose ``Content-Length`` is over the limit with a plain
text 413 even when the app would have answered JSON, so this middleware replaces it: a declared
length over the limit is refused before the app runs; a chunked body is counted while it is read
and stops with an ``HTTPException(413)`` that the app's handler turns into the error shape.

A body that stops arriving (a client holding the request open by sending nothing, or a byte now and
then) stops with ``HTTPException(408)`` once nothing came for ``idle_timeout`` seconds. Only while the
body is incomplete: afterwards ``receive`` waits for the client to disconnect (streamed responses),
which may take as long as the response does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from f5vi.api.errors import ApiError


class RequestTooLargeError(HTTPException):
    def __init__(self) -> None:
        super().__init__(status_code=413, detail="request body is too large")


class BodyTooSlowError(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(status_code=408, detail=f"no request body data for {seconds:g} s")


class BodyLimitMiddleware:
    """``limit_for(method, path)`` gives the byte limit of each request; ``idle_timeout`` the longest
    pause while its body arrives (None: no limit)."""

    def __init__(
        self, app: ASGIApp, *, limit_for: Callable[[str, str], int], idle_timeout: float | None = None
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.idle_timeout = idle_timeout

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
        body_complete = False

        async def limited_receive() -> Message:
            nonlocal received, body_complete
            if body_complete or self.idle_timeout is None:
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), self.idle_timeout)
                except TimeoutError:
                    raise BodyTooSlowError(self.idle_timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLargeError()
                body_complete = not message.get("more_body", False)
            return message

        await self.app(scope, limited_receive, send)
