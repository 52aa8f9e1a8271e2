"""Live-server helpers for the streaming / OpenAI / WebSocket / SSE / metrics tests.

A real uvicorn process (``server_helpers.LiveServer``) on 127.0.0.1 with the demo model, a synthetic
test voice and an API key; every wait is bounded.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf

from server_helpers import LiveServer, demo_model, server_env, write_voice

API_KEY = "test-realtime-key"
VOICE = "vi_test"
SAMPLE_RATE = 24_000

SHORT_TEXT = "Xin chào các bạn. Hôm nay trời đẹp quá."

# Sixteen sentences: the test voice's reference allows ~4 per chunk, so the text is 4-5 chunks and the
# first chunk is a small part of the work.
LONG_TEXT = " ".join(
    f"Câu số {n} kể về thời tiết hôm nay rất đẹp và mát mẻ."
    for n in ("một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín", "mười", "mười một", "mười hai")
)


def start_server(root: Path, model_root: Path, **overrides: Any) -> LiveServer:
    """Start a server whose state lives under ``root`` (demo model cached under ``model_root``)."""
    model = demo_model(model_root)
    write_voice(root / "voices", VOICE)
    settings: dict[str, Any] = {"nfe_step": 4, "api_key": API_KEY, "cleanup_interval_seconds": 0}
    settings.update(overrides)
    env = server_env(root, model, **settings)
    server = LiveServer(root, env)
    server.client.headers["Authorization"] = f"Bearer {API_KEY}"
    try:
        server.start(ready_timeout=120)
    except BaseException:
        server.close()
        raise
    return server


def auth_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def decode(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    """Decode any response format: pcm as raw s16le 24 kHz mono, everything else with soundfile."""
    if fmt == "pcm":
        assert len(data) % 2 == 0, len(data)
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0, SAMPLE_RATE
    wave, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    assert wave.shape[1] == 1, wave.shape
    return wave[:, 0], int(sr)


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Parse a text/event-stream into ``{"event", "id", "data"}`` dicts (comments skipped)."""
    event: dict[str, Any] = {}
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                payload = "\n".join(data)
                name = event.get("event", "message")
                yield {"event": name, "id": event.get("id"), "data": json.loads(payload)}
            event, data = {}, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name in ("event", "id", "retry"):
            event[name] = value


def wait_job(client: httpx.Client, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/tts/progress/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s")
