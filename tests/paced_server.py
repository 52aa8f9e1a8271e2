"""An in-process f5vi server on 127.0.0.1 whose ODE steps the test can count and hold.

The live-server tests of ``realtime_helpers`` run uvicorn in a subprocess, where a test can only
watch the clock. Here uvicorn runs on a thread of the test process with the real app and the demo
model, so a :class:`~step_gate.StepGate` can count and hold its ODE steps: a test asserts what
happened before what (bytes before the end of synthesis, no step after a cancel), not how long it took.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from realtime_helpers import API_KEY, VOICE
from server_helpers import demo_model, free_port, local_settings, write_voice
from step_gate import StepGate

__all__ = ["StepGate", "paced_server"]


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
