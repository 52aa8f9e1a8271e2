"""The server under load for ``python -m bench.load``: a real process, its memory, its shutdown.

Two kinds, both started as subprocesses exactly as they are deployed:

* ``python -m f5vi serve`` (the HTTP API);
* ``python -m f5vi.runpod.handler --rp_serve_api`` (the RunPod worker behind the RunPod SDK's own
  local API server), which also serves f5vi's HTTP app for the downloads.

Its state (job database, outputs, a copy of the shipped voices) lives in a fresh temporary
directory; its log goes to a file. Peak RSS is sampled from ``/proc/<pid>/status`` (every 20 ms, a
lower bound of the true peak) while the load runs, next to the kernel's lifetime high-water mark
(``VmHWM``, model load and warm-up included). On CUDA, VRAM comes from the server's ``GET /status``
(allocated and reserved MiB, polled every 0.5 s).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
VOICES_DIR = REPO_ROOT / "voices"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ServerSpec:
    """What to start: model, device and the two settings the batching A/B changes."""

    checkpoint: Path
    device: str
    dtype: str
    nfe: int
    normalizer: str
    engine_concurrency: int
    max_batch_frames: int | None
    """None: the server's device default."""
    runpod: bool = False
    threads: int | None = None
    """OMP/MKL threads of the server (None: torch's default, one per core)."""
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, root: Path, app_port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("F5VI_", "RUNPOD_", "BUCKET_"))}
        env.update(
            {
                "F5VI_MODEL": str(self.checkpoint),
                "F5VI_VOCODER": str(self.checkpoint / "vocos"),
                "F5VI_DEVICE": self.device,
                "F5VI_DTYPE": self.dtype,
                "F5VI_NFE_STEP": str(self.nfe),
                "F5VI_NORMALIZER": self.normalizer,
                "F5VI_ENGINE_CONCURRENCY": str(self.engine_concurrency),
                "F5VI_QUEUE_MAX": "256",
                "F5VI_DATA_DIR": str(root / "data"),
                "F5VI_OUTPUT_DIR": str(root / "output"),
                "F5VI_VOICES_DIR": str(root / "voices"),
                "F5VI_HOST": "127.0.0.1",
                "F5VI_PORT": str(app_port),
                "F5VI_LOG_LEVEL": "INFO",
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.max_batch_frames is not None:
            env["F5VI_MAX_BATCH_FRAMES"] = str(self.max_batch_frames)
        if self.threads is not None:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.threads)
        if self.runpod:
            env["RUNPOD_LOG_LEVEL"] = "WARN"
            env["F5VI_RUNPOD_SERVE_HTTP"] = "true"
        env.update(self.extra_env)
        return env


def rss_kib(pid: int) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of ``pid`` in KiB (0 where the process is gone)."""
    values = {"VmRSS": 0, "VmHWM": 0}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in values:
                    values[key] = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return values["VmRSS"], values["VmHWM"]


class RssSampler:
    """Largest ``VmRSS`` of a process while inside (sampled in a thread)."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_kib = max(self.peak_kib, rss_kib(self.pid)[0])

    def __enter__(self) -> RssSampler:
        self.peak_kib = rss_kib(self.pid)[0]
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, rss_kib(self.pid)[0])


class VramPoller:
    """Largest allocated / reserved GPU memory that ``GET /status`` reports while inside."""

    def __init__(self, status_url: str, interval: float = 0.5) -> None:
        self.url = status_url
        self.interval = interval
        self.allocated_mib: float | None = None
        self.reserved_mib: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vram-poller", daemon=True)

    def _poll(self, client: httpx.Client) -> None:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            body = client.get(self.url, timeout=5.0).json()
            allocated, reserved = body.get("gpu_memory_allocated_mb"), body.get("gpu_memory_reserved_mb")
            if allocated is not None:
                self.allocated_mib = max(allocated, self.allocated_mib or 0.0)
            if reserved is not None:
                self.reserved_mib = max(reserved, self.reserved_mib or 0.0)

    def _run(self) -> None:
        with httpx.Client() as client:
            while not self._stop.wait(self.interval):
                self._poll(client)
            self._poll(client)

    def __enter__(self) -> VramPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class ServerProcess:
    """One server (HTTP or RunPod worker) in its own process session and temporary state directory."""

    def __init__(self, spec: ServerSpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self.root = Path(tempfile.mkdtemp(prefix="f5vi-load-"))
        self.app_port = free_port()
        self.app_url = f"http://127.0.0.1:{self.app_port}"
        self.runpod_url: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_seconds = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float) -> ServerProcess:
        shutil.copytree(VOICES_DIR, self.root / "voices", ignore=shutil.ignore_patterns("*.sh", "*.md"))
        env = self.spec.env(self.root, self.app_port)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT / "src"), env.get("PYTHONPATH")]))
        if self.spec.runpod:
            api_port = free_port()
            self.runpod_url = f"http://127.0.0.1:{api_port}"
            command = [
                sys.executable, "-m", "f5vi.runpod.handler", "--rp_serve_api",
                "--rp_api_host", "127.0.0.1", "--rp_api_port", str(api_port),
            ]  # fmt: skip
        else:
            command = [sys.executable, "-m", "f5vi", "serve"]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.perf_counter() - started
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        urls = [f"{self.app_url}/health"]
        if self.runpod_url is not None:
            urls.append(f"{self.runpod_url}/openapi.json")
        last: Any = None
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    answers = [client.get(url) for url in urls]
                    last = [a.status_code for a in answers]
                    if all(a.status_code == 200 for a in answers):
                        return
                    health = answers[0].json()
                    if health.get("status") == "unhealthy":
                        raise RuntimeError(f"engine failed to load: {health}\n{self.log_tail()}")
                except (httpx.TransportError, ValueError) as exc:
                    last = repr(exc)
                time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout:g} s (last: {last})\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM to the process group (it drains), SIGKILL after ``timeout``; removes the state."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=30)
            code = self.proc.returncode
        shutil.rmtree(self.root, ignore_errors=True)
        return code

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
