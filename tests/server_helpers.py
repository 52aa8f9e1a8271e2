"""Helpers for the job/API/server tests: test voices, the demo model, a real uvicorn subprocess.

Every wait here is bounded; every process started here is terminated (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import soundfile as sf

if TYPE_CHECKING:
    from f5vi.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

TEST_TRANSCRIPT = "xin chào các bạn, hôm nay trời đẹp quá."


def voice_wave(seconds: float = 3.0, sample_rate: int = 24_000, seed: int = 0) -> np.ndarray:
    """A speech-like test signal: pitched buzz with syllable-rate loudness changes and pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 140.0 + 20.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    buzz = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0.0, None) ** 0.5
    envelope[(t % 1.0) > 0.8] = 0.0  # a short pause every second
    wave = 0.3 * buzz * envelope + 0.003 * rng.standard_normal(t.size)
    return (wave / np.max(np.abs(wave)) * 0.6).astype(np.float32)


def wav_bytes(seconds: float = 3.0, sample_rate: int = 24_000, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, voice_wave(seconds, sample_rate), sample_rate, format=fmt)
    return buffer.getvalue()


def write_voice(voices_dir: Path, voice_id: str, transcript: str | None = TEST_TRANSCRIPT) -> Path:
    voices_dir.mkdir(parents=True, exist_ok=True)
    path = voices_dir / f"{voice_id}.wav"
    sf.write(path, voice_wave(), 24_000, subtype="PCM_16")
    if transcript is not None:
        (voices_dir / f"{voice_id}.txt").write_text(transcript + "\n", encoding="utf-8")
    return path


def local_settings(root: Path, **overrides: Any) -> Settings:
    """Settings of an in-process test whose state (data, output, voices) all lives under ``root``."""
    from f5vi.config import Settings

    dirs = {"data_dir": root / "data", "output_dir": root / "output", "voices_dir": root / "voices"}
    return Settings(**{**dirs, **overrides})


def demo_model(base_dir: Path) -> Path:
    """The engine's demo model under ``base_dir/demo_model`` (made once per test session)."""
    from f5vi.engine.demo import DEMO_MARKER, make_demo_model

    directory = base_dir / "demo_model"
    if not (directory / DEMO_MARKER).is_file():
        make_demo_model(directory)
    return directory


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(root: Path, model_dir: Path | None, **overrides: Any) -> dict[str, str]:
    """Environment of a test server whose state all lives under ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("F5VI_")}
    env.update(
        {
            "F5VI_DATA_DIR": str(root / "data"),
            "F5VI_OUTPUT_DIR": str(root / "output"),
            "F5VI_VOICES_DIR": str(root / "voices"),
            "F5VI_DEMO_MODEL_DIR": str(root / "demo"),
            "F5VI_DEVICE": "cpu",
            "F5VI_NORMALIZER": "none",
            "F5VI_LOG_LEVEL": "INFO",
            # The serial engine (one job or stream at a time), whose order these tests check;
            # requests running side by side are tested in test_engine_sharing.py.
            "F5VI_ENGINE_CONCURRENCY": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if model_dir is not None:
        env["F5VI_MODEL"] = str(model_dir)
        env["F5VI_VOCODER"] = str(model_dir / "vocos")
    for key, value in overrides.items():
        env[f"F5VI_{key.upper()}"] = str(value)
    return env


_RUN_SERVER = (
    "import logging, sys\n"
    "from f5vi.config import Settings\n"
    "from f5vi.api.server import run\n"
    "s = Settings()\n"
    "logging.basicConfig(level=s.log_level, format='%(asctime)s %(levelname)s %(name)s: %(message)s')\n"
    "run(s, demo_fallback=sys.argv[1] == '1')\n"
)


class LiveServer:
    """A real ``uvicorn`` process serving the app on 127.0.0.1 (log in ``root/server.log``)."""

    def __init__(
        self, root: Path, env: dict[str, str], *, demo_fallback: bool = False, use_cli: bool = False
    ) -> None:
        self.root = root
        self.env = dict(env)
        self.demo_fallback = demo_fallback
        self.use_cli = use_cli
        self.port = free_port()
        self.env["F5VI_HOST"] = "127.0.0.1"
        self.env["F5VI_PORT"] = str(self.port)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=self.base_url, timeout=30.0)

    def start(self, *, ready_timeout: float = 120.0, wait_ready: bool = True) -> LiveServer:
        log = self.log_path.open("ab")
        if self.use_cli:  # exactly what `make serve` runs
            command = [PYTHON, "-m", "f5vi", "serve", *(["--demo-fallback"] if self.demo_fallback else [])]
        else:
            command = [PYTHON, "-c", _RUN_SERVER, "1" if self.demo_fallback else "0"]
        self.proc = subprocess.Popen(
            command,
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if wait_ready:
            self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                response = self.client.get("/health", timeout=2.0)
                last = response.json()
                if response.status_code == 200:
                    return last
                if last.get("status") == "unhealthy":
                    raise AssertionError(f"engine failed to load: {last}\n{self.log_tail()}")
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise AssertionError(f"server not ready after {timeout}s (last: {last})\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(timeout=30)

    def close(self) -> None:
        self.stop()
        self.client.close()

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def poll_until(
    fetch: Callable[[], dict[str, Any]],
    done: Callable[[dict[str, Any]], bool],
    *,
    timeout: float = 120.0,
    interval: float = 0.1,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Call ``fetch`` until ``done(result)``; returns the last result and every result seen."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = fetch()
        seen.append(result)
        if done(result):
            return result, seen
        time.sleep(interval)
    raise AssertionError(
        f"condition not met in {timeout}s; last: {json.dumps(seen[-1] if seen else None)[:2000]}"
    )


def assert_error_shape(
    response: httpx.Response, status: int, code: str | None = None, *, forbidden: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The response is ``status`` with ``{"error": {"code", "message"}}`` and leaks nothing
    (no traceback, no path of the repository, the temp dirs, or any of ``forbidden``)."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    if code is not None:
        assert body["error"]["code"] == code, body
    text = response.text
    assert "Traceback" not in text
    for secret in (str(REPO_ROOT), tempfile.gettempdir() + "/pytest", *forbidden):
        assert secret not in text, text
    return body


@contextlib.contextmanager
def loading_app_client(settings: Any) -> Iterator[Any]:
    """A TestClient on ``create_app(settings)`` whose engine never finishes loading: the HTTP layer
    answers, jobs queue up but never run (for tests that need no engine)."""
    import threading

    from fastapi.testclient import TestClient

    from f5vi.api.app import create_app
    from f5vi.engine.errors import ModelLoadError

    release = threading.Event()

    def never_loads(_: Any) -> Any:
        release.wait(60)
        raise ModelLoadError("test ended")

    try:
        with TestClient(
            create_app(settings, engine_loader=never_loads), raise_server_exceptions=False
        ) as client:
            yield client
    finally:
        release.set()
