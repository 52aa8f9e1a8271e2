"""An in-process f5vi server on 127.0.0.1 whose ODE steps the test can count and hold.

The live-server tests of ``realtime_helpers`` run uvicorn in a subprocess, where a test can only
watch the clock. Here uvicorn runs on a thread of the test process with the real app and the demo
model, and :class:`StepGate` wraps ``shared_sampler.advance`` (the one function every ODE step of
every request goes through): it counts steps and can hold one, so a test asserts what happened
before what (bytes before the end of synthesis, no step after a cancel) instead of how long it took.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from f5vi.engine import shared_sampler
from f5vi.engine.types import CancelToken
from realtime_helpers import API_KEY, VOICE
from server_helpers import demo_model, free_port, local_settings, write_voice

HOLD_LIMIT_SECONDS = 120.0
"""A held step is let go after this long at the latest (then ``released_by_timeout`` says so)."""


class StepGate:
    """Counts ODE steps; ``hold_at(n)`` holds step ``n`` (1-based) before it runs until ``release()``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.steps = 0
        self._hold_at: int | None = None
        self.holding = threading.Event()
        self._go = threading.Event()
        self.released_by_timeout = False
        self._lock = threading.Lock()
        original = shared_sampler.advance

        def advance(model: Any, items: list[Any]) -> None:
            with self._lock:
                self.steps += 1
                hold = self.steps == self._hold_at
            if hold:
                self.holding.set()
                if not self._go.wait(HOLD_LIMIT_SECONDS):
                    self.released_by_timeout = True
            original(model, items)

        monkeypatch.setattr(shared_sampler, "advance", advance)

    def hold_at(self, step: int) -> None:
        self._hold_at = step
        self.holding.clear()
        self._go.clear()

    def release(self) -> None:
        self._go.set()

    def release_on_cancel(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A cancel (of any request) records the step count and lets a held step go: the step then
        finishes and the engine must stop the cancelled request before it starts another."""
        self.steps_at_cancel: int | None = None
        original = CancelToken.cancel

        def cancel(token: CancelToken) -> None:
            original(token)
            if self.steps_at_cancel is None:
                self.steps_at_cancel = self.steps
            self.release()

        monkeypatch.setattr(CancelToken, "cancel", cancel)


@contextmanager
def paced_server(root: Path, model_root: Path, **overrides: Any) -> Iterator[httpx.Client]:
    """The app (demo model, test voice, API key) served on a thread; yields a client with the key."""
    from f5vi.api.app import create_app

    model = demo_model(model_root)
    write_voice(root / "voices", VOICE)
    options: dict[str, Any] = {
        "model": str(model),
        "vocoder": str(model / "vocos"),
        "device": "cpu",
        "normalizer": "none",
        "nfe_step": 4,
        "api_key": API_KEY,
        "engine_concurrency": 1,
        "cleanup_interval_seconds": 0,
        **overrides,
    }
    app = create_app(local_settings(root, **options))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=300
    )
    try:
        _wait(lambda: _ready(client), "the in-process server never became ready")
        yield client
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=30)


def _ready(client: httpx.Client) -> bool:
    try:
        return bool(client.get("/health").json().get("ready"))
    except (httpx.TransportError, ValueError):
        return False


def _wait(condition: Callable[[], bool], message: str, limit: float = 120.0) -> None:
    """Bounded wait for a state (a start-up, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)
