"""Webhook delivery against a real HTTP receiver on 127.0.0.1 (no mocks of the transport)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from f5vi.runpod.webhook import (
    API_KEY_HEADER,
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    WebhookConfig,
    compute_signature,
    deliver,
    signature_header,
    verify_signature,
)
from local_http import LocalHTTPServer, QuietHandler

SECRET = "s3cr3t-for-tests"
PAYLOAD = {
    "job_id": "client-42",
    "download_url": "http://127.0.0.1:1/output/client-42.wav",
    "confirmation_url": "http://127.0.0.1:1/confirm-download/client-42?token=abc",
    "filename": "client-42.wav",
    "text_echo": "xin chào các bạn",
}


@dataclass
class Receiver:
    """Answers with the next status of ``script`` (the last one repeats) and records each request."""

    script: list[int]
    requests: list[dict] = field(default_factory=list)
    url: str = ""

    def next_status(self) -> int:
        index = min(len(self.requests) - 1, len(self.script) - 1)
        return self.script[index]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(script=[200])

    class Handler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server method name
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.requests.append(
                {"headers": dict(self.headers.items()), "body": body, "at": time.monotonic()}
            )
            status = state.next_status()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}' if status < 300 else b'{"error": "nope"}')

    with LocalHTTPServer(Handler, "/api/runpod-webhook") as server:
        state.url = server.url
        yield state


def _config(url: str, **overrides: object) -> WebhookConfig:
    values: dict = {
        "url": url,
        "secret": SECRET,
        "api_key": "seed-key",
        "retries": 3,
        "timeout_seconds": 5.0,
        "backoff_initial_seconds": 0.05,
        "backoff_max_seconds": 0.2,
    }
    values.update(overrides)
    return WebhookConfig(**values)


def _header(request: dict, name: str) -> str | None:
    lowered = {k.lower(): v for k, v in request["headers"].items()}
    return lowered.get(name.lower())


def test_signed_delivery_retries_500_then_succeeds(receiver: Receiver) -> None:
    receiver.script = [500, 200]
    result = asyncio.run(deliver(_config(receiver.url), PAYLOAD))

    assert result.delivered is True
    assert result.attempts == 2
    assert result.status_code == 200
    assert result.history == ["HTTP 500", "200"]
    assert len(receiver.requests) == 2
    # backoff really waited between the attempts
    assert receiver.requests[1]["at"] - receiver.requests[0]["at"] >= 0.04

    for request in receiver.requests:
        body = request["body"]
        assert json.loads(body.decode("utf-8")) == PAYLOAD
        assert _header(request, "Content-Type") == "application/json"
        assert _header(request, API_KEY_HEADER) == "seed-key"
        assert verify_signature(SECRET, _header(request, SIGNATURE_HEADER), body)
        # a different secret or a tampered body must not verify
        assert not verify_signature("other-secret", _header(request, SIGNATURE_HEADER), body)
        assert not verify_signature(SECRET, _header(request, SIGNATURE_HEADER), body + b" ")
    # one delivery id for all attempts, so the receiver can deduplicate
    ids = {_header(r, DELIVERY_HEADER) for r in receiver.requests}
    assert ids == {result.delivery_id}


def test_signature_format_matches_the_documented_spec(receiver: Receiver) -> None:
    asyncio.run(deliver(_config(receiver.url), PAYLOAD))
    request = receiver.requests[0]
    header = _header(request, SIGNATURE_HEADER)
    assert header is not None
    t_part, v1_part = header.split(",")
    assert t_part.startswith("t=") and v1_part.startswith("v1=")
    timestamp = int(t_part[2:])
    assert abs(time.time() - timestamp) < 60
    # independent recomputation with hashlib/hmac, as a receiver in any language would do it
    expected = hmac.new(
        SECRET.encode(), f"{timestamp}.".encode() + request["body"], hashlib.sha256
    ).hexdigest()
    assert v1_part[3:] == expected == compute_signature(SECRET, timestamp, request["body"])


def test_verify_rejects_stale_and_malformed_headers() -> None:
    body = b'{"a":1}'
    old = signature_header(SECRET, body, timestamp=1_000_000)
    assert verify_signature(SECRET, old, body, now=1_000_100)
    assert not verify_signature(SECRET, old, body, now=1_000_000 + 301)
    assert not verify_signature(SECRET, None, body)
    assert not verify_signature(SECRET, "garbage", body)
    assert not verify_signature(SECRET, "t=abc,v1=00", body)
    assert not verify_signature(SECRET, "t=1000000", body, now=1_000_000)


def test_client_error_is_not_retried(receiver: Receiver) -> None:
    receiver.script = [401]
    result = asyncio.run(deliver(_config(receiver.url), PAYLOAD))
    assert result.delivered is False
    assert result.attempts == 1
    assert result.status_code == 401
    assert len(receiver.requests) == 1


def test_retries_are_bounded_and_never_raise(receiver: Receiver) -> None:
    receiver.script = [503]
    result = asyncio.run(deliver(_config(receiver.url, retries=2), PAYLOAD))
    assert result.delivered is False
    assert result.attempts == 3
    assert len(receiver.requests) == 3
    assert result.error == "HTTP 503"


def test_connection_refused_is_retried_then_given_up() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # nothing listens on `port` now
    result = asyncio.run(deliver(_config(f"http://127.0.0.1:{port}/hook", retries=1), PAYLOAD))
    assert result.delivered is False
    assert result.attempts == 2
    assert result.status_code is None
    assert result.error and "Connect" in result.error


def test_no_secret_means_no_signature_header(receiver: Receiver) -> None:
    result = asyncio.run(deliver(_config(receiver.url, secret=None, api_key=None), PAYLOAD))
    assert result.delivered
    request = receiver.requests[0]
    assert _header(request, SIGNATURE_HEADER) is None
    assert _header(request, API_KEY_HEADER) is None


def test_malformed_url_does_not_raise() -> None:
    result = asyncio.run(deliver(_config("not a url"), PAYLOAD))
    assert result.delivered is False
    assert result.attempts == 1
