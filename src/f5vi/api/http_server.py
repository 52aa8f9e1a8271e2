"""How uvicorn serves the app: connection timeouts and limits, chosen on purpose (``uvicorn_options``).

uvicorn has a keep-alive timeout but no deadline for the request head: a client that sends its
headers a byte at a time (slowloris) holds a socket, and a slot of the accept backlog and file
descriptors, for as long as it likes; each byte even cancels the keep-alive timer. 100 such sockets
stayed open for as long as they were fed. :func:`head_deadline_protocol` wraps uvicorn's HTTP protocol
(httptools when installed, else h11) with one: the request line and headers must be complete within
``F5VI_HTTP_HEADER_TIMEOUT_SECONDS`` of the connection opening, or on a kept-alive connection of the
next request's first byte (the idle wait before it is uvicorn's keep-alive timeout), and may not
exceed ``F5VI_HTTP_MAX_HEADER_BYTES``; otherwise the server answers 408 (or 431) and closes. Slow
request *bodies* are cut by :class:`~f5vi.api.limits.BodyLimitMiddleware`. What a reverse proxy should
add: docs/security.md.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

from f5vi.config import Settings

logger = logging.getLogger(__name__)


def _plain_response(status: bytes, text: str) -> bytes:
    body = text.encode("ascii")
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(body)).encode("ascii") + b"\r\nconnection: close\r\n\r\n" + body
    )


def head_deadline_protocol(
    timeout_seconds: float, max_head_bytes: int, base: type[asyncio.Protocol] = AutoHTTPProtocol
) -> type[asyncio.Protocol]:
    """``base`` (a uvicorn HTTP protocol class) with a deadline and a size limit for each request head.

    Works on what both uvicorn protocols share: ``cycle`` (a new one is set when a request's headers
    are complete), ``on_response_complete`` (after which the connection waits for the next request)
    and ``handle_websocket_upgrade`` (after which the socket is no longer HTTP's).
    """

    class HeadDeadlineProtocol(base):  # type: ignore[valid-type, misc]
        _awaiting_head = False
        _head_timer: asyncio.TimerHandle | None = None
        _head_bytes = 0
        _cycle_before_head: object = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._await_head()
            self._arm_head_deadline()  # the first request: from the connection opening

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_deadline()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._awaiting_head and self._head_timer is None:
                self._arm_head_deadline()  # a later request: from its first byte
            super().data_received(data)
            if not self._awaiting_head:
                return
            if self.cycle is not None and self.cycle is not self._cycle_before_head:
                self._awaiting_head = False  # the head is complete: the request is the app's now
                self._cancel_head_deadline()
                return
            self._head_bytes += len(data)
            if self._head_bytes > max_head_bytes and not self.transport.is_closing():
                self._cancel_head_deadline()
                self.transport.write(
                    _plain_response(b"431 Request Header Fields Too Large", "headers too large")
                )
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            idle = self.cycle is None or self.cycle.response_complete
            if idle and not self.transport.is_closing():
                self._await_head()  # the idle wait is uvicorn's keep-alive timeout

        def handle_websocket_upgrade(self, *args: Any) -> None:
            self._awaiting_head = False
            self._cancel_head_deadline()
            super().handle_websocket_upgrade(*args)

        def _await_head(self) -> None:
            self._awaiting_head = True
            self._head_bytes = 0
            self._cycle_before_head = self.cycle

        def _arm_head_deadline(self) -> None:
            self._cancel_head_deadline()
            self._head_timer = self.loop.call_later(timeout_seconds, self._head_deadline_passed)

        def _cancel_head_deadline(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_deadline_passed(self) -> None:
            self._head_timer = None
            if self.transport.is_closing():
                return
            if self._head_bytes:  # a request was begun: say why it ends
                logger.info(
                    "closing a connection from %s: request head incomplete after %g s",
                    self.client[0] if self.client else "?",
                    timeout_seconds,
                )
                self.transport.write(_plain_response(b"408 Request Timeout", "request head took too long"))
            self.transport.close()

    HeadDeadlineProtocol.__name__ = f"HeadDeadline{base.__name__}"
    return HeadDeadlineProtocol


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The connection handling of every uvicorn server of this package (``serve`` and RunPod's)."""
    return {
        "http": head_deadline_protocol(settings.http_header_timeout_seconds, settings.http_max_header_bytes),
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        "limit_concurrency": settings.http_max_concurrency,
        "h11_max_incomplete_event_size": settings.http_max_header_bytes,
    }
