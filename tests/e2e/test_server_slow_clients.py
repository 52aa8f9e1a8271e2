"""Slow clients cannot hold sockets (issue 12, item 6): a real server, real sockets fed a byte at a time.

The deadlines are set short here (1.5 s) so the test is quick; the bounds asserted are generous
(the point is that the server closes at all, which it did not: 100 such sockets stayed open).
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server_helpers import LiveServer, server_env

pytestmark = pytest.mark.slow

DEADLINE = 1.5
GIVE_UP = 20.0  # far beyond DEADLINE: only a server that never closes reaches it


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """No model is needed: the HTTP layer serves while the engine is missing (/health says unhealthy)."""
    root = tmp_path_factory.mktemp("slow")
    env = server_env(
        root,
        None,
        model=str(root / "no-model"),
        http_header_timeout_seconds=DEADLINE,
        http_body_idle_timeout_seconds=DEADLINE,
        http_keep_alive_seconds=3,
    )
    live = LiveServer(root, env).start(wait_ready=False)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                live.client.get("/health", timeout=2.0)
                break
            time.sleep(0.2)
        yield live
    finally:
        live.close()


def _connect(server: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=GIVE_UP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_response(sock: socket.socket) -> bytes:
    """One whole response (head + Content-Length body) from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data[:200]!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return head


def _closed_by_server(sock: socket.socket) -> bytes | None:
    """What the server sent before closing; None if it still has the socket open."""
    sock.setblocking(False)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except BlockingIOError:
        return None
    except OSError:
        pass
    return received


def test_headers_sent_byte_by_byte_are_cut_off(server: LiveServer) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 400
    sockets = [_connect(server) for _ in range(20)]
    started = time.monotonic()
    sent = 0
    open_ = dict(enumerate(sockets))
    closed_after: dict[int, float] = {}
    replies: dict[int, bytes] = {}
    while open_ and time.monotonic() - started < GIVE_UP:
        for index, sock in list(open_.items()):
            with contextlib.suppress(OSError):
                sock.send(head[sent : sent + 1])
            reply = _closed_by_server(sock)
            if reply is not None:
                closed_after[index] = time.monotonic() - started
                replies[index] = reply
                del open_[index]
            else:
                sock.setblocking(True)
        sent = min(sent + 1, len(head) - 1)
        time.sleep(0.1)
    for sock in sockets:
        sock.close()
    assert not open_, f"{len(open_)} slow sockets still open after {GIVE_UP} s"
    assert min(closed_after.values()) >= DEADLINE * 0.9
    assert all(reply.startswith(b"HTTP/1.1 408") for reply in replies.values()), replies


def test_a_silent_connection_is_closed(server: LiveServer) -> None:
    sock = _connect(server)
    started = time.monotonic()
    sock.settimeout(GIVE_UP)
    try:
        assert sock.recv(1024) == b""  # closed without a word: nothing was asked
    finally:
        sock.close()
    assert DEADLINE * 0.9 <= time.monotonic() - started < GIVE_UP


def test_keep_alive_clients_are_not_affected(server: LiveServer) -> None:
    """Requests on one kept-alive connection, each head sent at once, with pauses under keep-alive."""
    sock = _connect(server)
    try:
        for _ in range(3):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(sock).startswith(b"HTTP/1.1 503")  # unhealthy: no model here
            time.sleep(DEADLINE * 1.3)  # longer than the head deadline, shorter than keep-alive (3 s)
    finally:
        sock.close()


def test_a_stalled_body_gets_408(server: LiveServer) -> None:
    sock = _connect(server)
    try:
        body_start = b'{"text": "xin ch'
        sock.sendall(
            b"POST /tts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + body_start
        )
        sock.settimeout(GIVE_UP)
        started = time.monotonic()
        reply = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
    finally:
        sock.close()
    assert time.monotonic() - started < GIVE_UP
    status_line, _, rest = reply.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 408"), reply[:300]
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body["error"]["code"] == "request_timeout"


def test_settings_reach_uvicorn(tmp_path: Path) -> None:
    from f5vi.api.http_server import uvicorn_options
    from f5vi.config import Settings

    options = uvicorn_options(Settings(http_keep_alive_seconds=7, http_max_concurrency=50))
    assert options["timeout_keep_alive"] == 7 and options["limit_concurrency"] == 50
    assert options["http"].__name__.startswith("HeadDeadline")


def test_a_kept_alive_connection_cannot_trickle_the_next_head(server: LiveServer) -> None:
    sock = _connect(server)
    try:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(sock).startswith(b"HTTP/1.1 503")
        started = time.monotonic()
        sock.settimeout(0.2)
        reply = b""
        for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 300:
            try:
                sock.send(bytes([byte]))
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            reply += chunk
            if time.monotonic() - started > GIVE_UP:
                break
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert time.monotonic() - started < GIVE_UP
