"""The RunPod worker end to end, through the SDK's own local API server (``--rp_serve_api``).

One worker subprocess (demo model, shipped voices, all state in a temp dir) serves the module's
tests; a second one is started over the same data directory to show that redelivery after a
restart returns the stored result. A receiver on 127.0.0.1 in this test process plays both the
client's webhook endpoint and RunPod's progress endpoint (``RUNPOD_WEBHOOK_POST_OUTPUT``, where the
SDK's ``progress_update`` posts). Nothing is mocked: the engine really synthesises (noise, from
random weights) and every download goes through the worker's own f5vi HTTP app.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf

from f5vi.runpod.webhook import verify_signature
from local_http import LocalHTTPServer, QuietHandler

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
VOICE = "vi_north_male"
TEXT = "xin chào các bạn, hôm nay trời đẹp quá."
WEBHOOK_SECRET = "whsec-test-only"
WEBHOOK_API_KEY = "nextjs-shared-key"
ENDPOINT_ID = "f5vi-test"
START_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------ receiver
@dataclass
class Receiver:
    """``/hook``: the client's webhook (first attempt of each delivery gets 500, then 200).
    ``/progress/<id>``: RunPod's job-output endpoint that ``progress_update`` posts to."""

    url: str = ""
    hooks: list[dict[str, Any]] = field(default_factory=list)
    progress: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hooks_for(self, job_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [h for h in self.hooks if h["json"].get("job_id") == job_id]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server method name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = 200
            with state.lock:
                if self.path.startswith("/hook"):
                    delivery = headers.get("x-f5vi-delivery")
                    first = not any(h["headers"].get("x-f5vi-delivery") == delivery for h in state.hooks)
                    status = 500 if first else 200
                    state.hooks.append(
                        {"headers": headers, "body": body, "json": json.loads(body), "status": status}
                    )
                elif self.path.startswith("/progress/"):
                    job_id = self.path.split("/")[2].split("?")[0]
                    state.progress.append({"id": job_id, "data": json.loads(body)})
                else:
                    status = 404
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

    with LocalHTTPServer(Handler, "") as server:
        state.url = server.url
        yield state


# ------------------------------------------------------------------------------------ worker process
@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    api: str  # the SDK's local API server
    app: str  # f5vi's own HTTP app in the same process
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo") / "model"
    subprocess.run(
        [sys.executable, "-m", "f5vi", "make-demo-model", str(directory)],
        check=True,
        capture_output=True,
        timeout=120,
        cwd=REPO,
    )
    return directory


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("worker-state")


def _worker_env(model_dir: Path, state_dir: Path, app_port: int, receiver: Receiver) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("F5VI_", "RUNPOD_", "BUCKET_"))}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "HF_HUB_OFFLINE": "1",
            "F5VI_MODEL": str(model_dir),
            "F5VI_VOCODER": str(model_dir / "vocos"),
            "F5VI_DEVICE": "cpu",
            "F5VI_VOICES_DIR": str(REPO / "voices"),
            "F5VI_DATA_DIR": str(state_dir / "data"),
            "F5VI_OUTPUT_DIR": str(state_dir / "output"),
            "F5VI_HOST": "127.0.0.1",
            "F5VI_PORT": str(app_port),
            "F5VI_NFE_STEP": "6",
            "F5VI_NORMALIZER": "none",
            "F5VI_WEBHOOK_URL": f"{receiver.url}/hook",
            "F5VI_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "F5VI_WEBHOOK_API_KEY": WEBHOOK_API_KEY,
            # where the SDK's progress_update posts (RunPod sets this on real workers)
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{receiver.url}/progress/$ID?src=sdk",
            # makes the SDK's local server expose /<endpoint>/realtime, which takes an explicit job id
            "RUNPOD_ENDPOINT_ID": ENDPOINT_ID,
            "RUNPOD_LOG_LEVEL": "INFO",
        }
    )
    return env


@contextlib.contextmanager
def run_worker(env: dict[str, str], log_path: Path) -> Iterator[Worker]:
    api_port = _free_port()
    app = f"http://127.0.0.1:{env['F5VI_PORT']}"
    api = f"http://127.0.0.1:{api_port}"
    with open(log_path, "ab") as log:
        # Output goes to a file, never to an undrained pipe (the seed's hang, defect 14).
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "f5vi.runpod.handler",
                "--rp_serve_api",
                "--rp_api_host",
                "127.0.0.1",
                "--rp_api_port",
                str(api_port),
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    worker = Worker(proc, api, app, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"worker exited with {proc.returncode} during start:\n{worker.log()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"worker not ready after {START_TIMEOUT} s:\n{worker.log()[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{api}/openapi.json", timeout=2).status_code == 200:
                    break
            time.sleep(0.3)
        yield worker
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def worker(model_dir: Path, state_dir: Path, receiver: Receiver) -> Iterator[Worker]:
    env = _worker_env(model_dir, state_dir, _free_port(), receiver)
    with run_worker(env, state_dir / "worker-1.log") as running:
        yield running
    # SIGTERM: uvicorn re-raises it after a clean shutdown, the worker turns that into exit 143.
    assert running.proc.returncode in (0, 143), running.log()[-3000:]


# ------------------------------------------------------------------------------------ helpers
def _runsync(worker: Worker, payload: Any) -> dict[str, Any]:
    response = httpx.post(f"{worker.api}/runsync", json={"input": payload}, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def _realtime(worker: Worker, job_id: str, payload: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{worker.api}/{ENDPOINT_ID}/realtime", json={"id": job_id, "input": payload}, timeout=120
    )
    assert response.status_code == 200, response.text
    return response.json()


def _check_audio(worker: Worker, output: dict[str, Any]) -> bytes:
    """Download ``download_url`` (served by f5vi in the worker) and validate the audio."""
    assert output["download_url"].startswith(worker.app + "/output/")
    response = httpx.get(output["download_url"], timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("audio/wav")
    data = response.content
    assert len(data) == output["size_bytes"]
    wave, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert rate == 24_000 == output["sample_rate"]
    assert wave.ndim == 1
    assert abs(len(wave) / rate - output["duration_seconds"]) < 0.05
    assert output["duration_seconds"] > 0.3
    assert np.isfinite(wave).all() and float(np.sqrt(np.mean(wave**2))) > 1e-3  # not silence
    # small results also come inline, byte-identical
    assert base64.b64decode(output["audio_base64"]) == data
    return data


def _jobs_rows(state_dir: Path, where: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
    conn = sqlite3.connect(f"file:{state_dir / 'data' / 'jobs.sqlite3'}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return list(
            conn.execute(f"SELECT id, state, attempts, idempotency_key FROM jobs WHERE {where}", args)
        )
    finally:
        conn.close()


def _error(result: dict[str, Any]) -> dict[str, Any]:
    """The job error: a JSON string of ``{code, message}`` (the SDK types job errors as strings)."""
    assert isinstance(result["error"], str), result
    error = json.loads(result["error"])
    assert isinstance(error, dict)
    return error


def _assert_no_internals(text: str) -> None:
    assert "Traceback" not in text and "error_traceback" not in text
    assert str(REPO) not in text and "/tmp/" not in text


# ------------------------------------------------------------------------------------ must-show 1
def test_runsync_completes_and_the_audio_downloads_from_the_worker(
    worker: Worker, receiver: Receiver
) -> None:
    result = _runsync(worker, {"text": TEXT, "ref_name": VOICE, "speed": 0.9, "job_id": "client-sync-1"})
    assert result["status"] == "COMPLETED", result
    output = result["output"]
    assert output["job_id"] == "client-sync-1"
    assert output["runpod_job_id"] == result["id"]
    assert output["sample_used"] == VOICE
    assert [segment["voice_id"] for segment in output["segments"]] == [VOICE]
    assert output["filename"].startswith("client-sync-1_") and output["filename"].endswith(".wav")
    assert output["processing_time_seconds"] > 0
    assert output["storage"] == "local"
    assert output["confirmation_url"].startswith(f"{worker.app}/confirm-download/client-sync-1?token=")
    _check_audio(worker, output)

    # progress went through runpod.serverless.progress_update with stage and percent
    # the SDK posts each update from its own thread: order them by our sequence number
    updates = sorted(
        (p["data"] for p in receiver.progress if p["id"] == result["id"]), key=lambda u: u["output"]["seq"]
    )
    assert updates, "no progress_update reached RUNPOD_WEBHOOK_POST_OUTPUT"
    assert all(u["status"] == "IN_PROGRESS" for u in updates)
    stages = [u["output"]["stage"] for u in updates]
    percents = [u["output"]["percent"] for u in updates]
    assert "synthesizing" in stages
    assert percents == sorted(percents), "progress must never go backwards"
    assert percents[-1] == 100.0


def test_run_then_status_polls_to_completed_and_confirmation_works(worker: Worker) -> None:
    response = httpx.post(f"{worker.api}/run", json={"input": {"text": TEXT, "ref_name": VOICE}}, timeout=30)
    submitted = response.json()
    assert submitted["status"] == "IN_PROGRESS"
    final: dict[str, Any] = {}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        # The SDK's local server runs the job inside this POST (its /run is lazy; deps.md §3).
        final = httpx.post(f"{worker.api}/status/{submitted['id']}", timeout=120).json()
        if final.get("status") in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.5)
    assert final.get("status") == "COMPLETED", final
    output = final["output"]
    assert output["runpod_job_id"] == submitted["id"]
    _check_audio(worker, output)

    check = httpx.get(f"{worker.app}/check-download/{output['job_id']}", timeout=10).json()
    assert check["confirmed"] is False
    forged = httpx.post(output["confirmation_url"].split("?")[0] + "?token=wrong", timeout=10)
    assert forged.status_code == 403
    confirmed = httpx.post(output["confirmation_url"], json={"status": "downloaded"}, timeout=10)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    assert (
        httpx.get(f"{worker.app}/check-download/{output['job_id']}", timeout=10).json()["confirmed"] is True
    )


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"text": "", "ref_name": VOICE}, "validation_error"),
        ({"text": TEXT, "ref_name": VOICE, "speed": 9.0}, "validation_error"),
        ({"text": TEXT}, "validation_error"),
        ({"text": TEXT, "ref_name": "../../etc/passwd"}, "invalid_voice_name"),
        ({"text": TEXT, "ref_name": "no_such_voice"}, "voice_not_found"),
        ({"text": TEXT, "ref_name": VOICE, "job_id": "bad id/with slash"}, "validation_error"),
    ],
)
def test_bad_input_fails_with_a_clear_error(worker: Worker, payload: Any, code: str) -> None:
    response = httpx.post(f"{worker.api}/runsync", json={"input": payload}, timeout=60)
    result = response.json()
    assert result["status"] == "FAILED", result
    error = _error(result)
    assert error["code"] == code, error
    assert error["message"]
    _assert_no_internals(response.text)


# ------------------------------------------------------------------------------------ must-show 3
def test_completion_webhook_is_signed_and_retried_after_500(worker: Worker, receiver: Receiver) -> None:
    result = _runsync(worker, {"text": TEXT, "ref_name": VOICE, "job_id": "client-hook-1"})
    assert result["status"] == "COMPLETED", result
    output = result["output"]
    assert output["webhook_delivered"] is True

    hooks = receiver.hooks_for("client-hook-1")
    assert [h["status"] for h in hooks] == [500, 200], "retried once after the 500"
    assert hooks[0]["headers"]["x-f5vi-delivery"] == hooks[1]["headers"]["x-f5vi-delivery"]
    for hook in hooks:
        assert verify_signature(WEBHOOK_SECRET, hook["headers"]["x-f5vi-signature"], hook["body"])
        assert hook["headers"]["x-api-key"] == WEBHOOK_API_KEY
        body = hook["json"]
        # the seed's Next.js contract
        assert {k: body[k] for k in ("job_id", "download_url", "confirmation_url", "filename")} == {
            "job_id": output["job_id"],
            "download_url": output["download_url"],
            "confirmation_url": output["confirmation_url"],
            "filename": output["filename"],
        }
    assert not verify_signature("another-secret", hooks[1]["headers"]["x-f5vi-signature"], hooks[1]["body"])


# ------------------------------------------------------------------------------------ must-show 2
def test_redelivery_returns_the_stored_result_and_runs_the_engine_once(
    worker: Worker, state_dir: Path, model_dir: Path, receiver: Receiver
) -> None:
    payload = {"text": "một hai ba bốn năm.", "ref_name": VOICE, "speed": 1.0}
    first = _realtime(worker, "rp-redeliver-1", payload)
    assert "error" not in first, first
    output = first["output"]
    data = _check_audio(worker, output)

    second = _realtime(worker, "rp-redeliver-1", payload)
    assert second["output"] == output, "a redelivered job must return the stored result"

    rows = _jobs_rows(state_dir, "idempotency_key = ?", ("runpod:rp-redeliver-1",))
    assert len(rows) == 1, "one job row per RunPod job id"
    assert rows[0]["state"] == "succeeded"
    assert rows[0]["attempts"] == 1, "the engine ran exactly once"
    files = sorted(p.name for p in (state_dir / "output").glob(f"{output['job_id']}_*"))
    assert files == [output["filename"]]
    assert worker.log().count(f"job {output['job_id']} running") == 1
    assert len(receiver.hooks_for(output["job_id"])) == 2  # the webhook was not sent again (500, 200)

    # The client's job_id is a second key: a new RunPod job with the same client id and request
    # returns the existing job; the same client id with a different request is refused.
    again = _runsync(worker, {**payload, "job_id": "client-dup-1"})
    reused = _runsync(worker, {**payload, "job_id": "client-dup-1"})
    assert reused["status"] == "COMPLETED" and reused["id"] != again["id"]
    assert reused["output"]["filename"] == again["output"]["filename"]
    assert _jobs_rows(state_dir, "id = ?", ("client-dup-1",))[0]["attempts"] == 1
    conflict = _runsync(worker, {**payload, "text": "khác hẳn.", "job_id": "client-dup-1"})
    assert conflict["status"] == "FAILED" and _error(conflict)["code"] == "job_conflict"

    # After a worker restart (same data directory) the stored result still comes back.
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=30) in (0, 143)
    env = _worker_env(model_dir, state_dir, _free_port(), receiver)
    with run_worker(env, state_dir / "worker-2.log") as restarted:
        third = _realtime(restarted, "rp-redeliver-1", payload)
        assert "error" not in third, third
        out3 = third["output"]
        for key in (
            "job_id",
            "filename",
            "duration_seconds",
            "processing_time_seconds",
            "seed",
            "audio_base64",
        ):
            assert out3[key] == output[key], key
        # the URLs point at the restarted worker's app, for the same file
        assert "/output/" + output["filename"] + "?token=" in out3["download_url"]
        assert httpx.get(out3["download_url"], timeout=30).content == data
        assert "already exists (succeeded); not synthesising again" in restarted.log()
        assert f"job {output['job_id']} running" not in restarted.log()
    rows = _jobs_rows(state_dir, "idempotency_key = ?", ("runpod:rp-redeliver-1",))
    assert [(r["state"], r["attempts"]) for r in rows] == [("succeeded", 1)]


# ------------------------------------------------------------------------------------ start-up
def _unloadable_model_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A worker whose configured model cannot be loaded (no weights here, hub offline)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("F5VI_", "RUNPOD_", "BUCKET_"))}
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "F5VI_MODEL": str(tmp_path / "no-such-model"),
            "F5VI_VOCODER": str(tmp_path / "no-such-vocoder"),
            "F5VI_DATA_DIR": str(tmp_path / "data"),
            "F5VI_OUTPUT_DIR": str(tmp_path / "output"),
            "F5VI_VOICES_DIR": str(REPO / "voices"),
            "F5VI_HOST": "127.0.0.1",
            "F5VI_PORT": str(_free_port()),
            **extra,
        }
    )
    return env


def _run_worker(
    env: dict[str, str], cwd: Path, *args: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "f5vi.runpod.handler", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_a_model_that_does_not_load_stops_the_worker_before_it_takes_jobs(tmp_path: Path) -> None:
    env = _unloadable_model_env(tmp_path)
    proc = _run_worker(env, REPO, "--rp_serve_api", "--rp_api_port", str(_free_port()), timeout=120)
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert "f5vi RunPod worker: the model failed to load" in proc.stderr
    assert "will not accept jobs" in proc.stderr
    assert "Starting Serverless Worker" not in proc.stdout + proc.stderr


def _test_input_run(tmp_path: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """The SDK's local one-job run (``--test_input``) of the shipped test_input.json, as the image's
    ``runpod --test_input "$(cat test_input.json)"`` does it."""
    env = _unloadable_model_env(
        tmp_path, F5VI_DEVICE="cpu", F5VI_NFE_STEP="6", F5VI_NORMALIZER="none", **extra_env
    )
    test_input = (REPO / "test_input.json").read_text(encoding="utf-8")
    return _run_worker(env, tmp_path, "--test_input", test_input, timeout=300)


def test_demo_fallback_lets_test_input_complete_without_weights_and_says_demo(tmp_path: Path) -> None:
    proc = _test_input_run(tmp_path, F5VI_DEMO_FALLBACK="1")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "completed successfully" in log
    assert "falling back to the DEMO model" in log and "DEMO MODEL LOADED" in log
    # The SDK logs the job result as a Python dict.
    result = log.split("Job result: ", 1)[1]
    assert "'status': 'completed'" in result
    assert "'demo': True" in result
    assert "DEMO model: random weights, this audio is noise" in result
    assert "'audio_base64': '" in result
    # Made under the data dir, never in the current directory.
    assert (tmp_path / "data" / "models" / "demo" / "DEMO_MODEL").is_file()
    assert not (tmp_path / "models").exists()
    outputs = list((tmp_path / "output").rglob("*.wav"))
    assert len(outputs) == 1
    audio, rate = sf.read(outputs[0])
    assert rate == 24000 and audio.size > rate // 2


def test_without_demo_fallback_test_input_exits_4_without_weights(tmp_path: Path) -> None:
    proc = _test_input_run(tmp_path)
    assert proc.returncode == 4, (proc.stdout + proc.stderr)[-3000:]
    assert "the model failed to load" in proc.stderr
    assert not (tmp_path / "data" / "models").exists()


# ------------------------------------------------------------------------------------ concurrency
def test_a_worker_with_concurrency_4_takes_4_jobs_at_once(
    model_dir: Path, tmp_path: Path, receiver: Receiver
) -> None:
    env = _worker_env(model_dir, tmp_path, _free_port(), receiver)
    env["F5VI_RUNPOD_CONCURRENCY"] = "4"
    texts = [f"{TEXT} Câu số {n}." for n in ("một", "hai", "ba", "bốn")]
    with run_worker(env, tmp_path / "worker-concurrent.log") as running:
        results: list[dict[str, Any]] = [{} for _ in texts]

        def post(i: int) -> None:
            payload = {"text": texts[i], "ref_name": VOICE, "job_id": f"concurrent-{i}", "seed": i}
            results[i] = _runsync(running, payload)

        threads = [threading.Thread(target=post, args=(i,)) for i in range(len(texts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        outputs = []
        for i, result in enumerate(results):
            assert result.get("status") == "COMPLETED", result
            assert result["output"]["job_id"] == f"concurrent-{i}"
            outputs.append(_check_audio(running, result["output"]))
        assert len(set(outputs)) == 4  # four different texts and seeds, four different files
        assert "taking up to 4 RunPod job(s) at once" in running.log()
    conn = sqlite3.connect(f"file:{tmp_path / 'data' / 'jobs.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        spans = conn.execute(
            "SELECT started_at, finished_at FROM jobs WHERE id LIKE 'concurrent-%'"
        ).fetchall()
    finally:
        conn.close()
    assert len(spans) == 4
    latest_start = max(start for start, _ in spans)
    earliest_end = min(end for _, end in spans)
    assert latest_start < earliest_end, spans  # all four were in flight together


def test_the_worker_tells_the_sdk_its_concurrency(tmp_path: Path) -> None:
    from f5vi.config import Settings
    from f5vi.runpod.handler import RunPodWorker

    assert RunPodWorker(Settings(data_dir=tmp_path)).concurrency_modifier(1) == 1  # CPU default
    configured = RunPodWorker(Settings(data_dir=tmp_path, runpod_concurrency=4))
    assert configured.concurrency_modifier(1) == configured.concurrency_modifier(7) == 4
