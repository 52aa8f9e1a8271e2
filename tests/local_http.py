"""HTTP peers the tests run on 127.0.0.1: a quiet threaded server.

The webhook receivers of the RunPod tests share :class:`LocalHTTPServer`, so each test file only
writes the handler it needs. The S3 bucket is moto's real server (tests/s3_server.py).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not print every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


class LocalHTTPServer:
    """``handler`` served from a daemon thread on a free port until :meth:`close`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], path: str = "") -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LocalHTTPServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
