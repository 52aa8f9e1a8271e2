"""RunPodWorker in this process: S3 delivery through the storage's bucket mirror (a local fake S3),
cancellation, webhook bookkeeping across redeliveries, and start-up refusals.

The worker is real (demo model, shipped voices, its own JobManager loop thread); the handler is
awaited the way the SDK awaits it. Only the object store is a stand-in: a small S3-compatible HTTP
server on 127.0.0.1 that accepts what boto3 sends (multipart upload) and serves presigned GETs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from f5vi.config import Settings
from f5vi.runpod.handler import EXIT_CONFIG_ERROR, RunPodWorker, StartupError
from local_http import LocalHTTPServer, QuietHandler
from s3_server import MotoS3

REPO = Path(__file__).resolve().parents[2]
VOICE = "vi_north_male"
LONG_TEXT = " ".join(["hôm nay trời đẹp quá, chúng ta cùng nhau đi dạo công viên nhé."] * 12)


class HookReceiver:
    """Answers the webhook with the statuses in ``script`` (then 200) and records the bodies."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.calls: list[dict[str, Any]] = []
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server method name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver.script.pop(0) if receiver.script else 200
                receiver.calls.append({"json": json.loads(body), "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._http = LocalHTTPServer(Handler, "/hook")
        self.url = self._http.url

    def close(self) -> None:
        self._http.close()


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def fake_s3() -> Iterator[MotoS3]:
    server = MotoS3()
    server.create_bucket("tts-results")
    yield server
    server.close()


@pytest.fixture(scope="module")
def hooks() -> Iterator[HookReceiver]:
    receiver = HookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def progress() -> list[dict[str, Any]]:
    return []


@pytest.fixture(scope="module")
def worker(
    tmp_path_factory: pytest.TempPathFactory,
    fake_s3: MotoS3,
    hooks: HookReceiver,
    progress: list[dict[str, Any]],
) -> Iterator[RunPodWorker]:
    from f5vi.engine.demo import make_demo_model

    root = tmp_path_factory.mktemp("inprocess")
    model = make_demo_model(root / "model")
    bucket_env = {
        "BUCKET_ENDPOINT_URL": fake_s3.url,
        "BUCKET_ACCESS_KEY_ID": "test-access",
        "BUCKET_SECRET_ACCESS_KEY": "test-secret",
    }
    saved = {k: os.environ.get(k) for k in bucket_env}
    os.environ.update(bucket_env)
    settings = Settings(
        model=str(model),
        vocoder=str(model / "vocos"),
        device="cpu",
        voices_dir=REPO / "voices",
        data_dir=root / "data",
        output_dir=root / "output",
        host="127.0.0.1",
        port=0,
        nfe_step=6,
        normalizer="none",
        s3_bucket="tts-results",
        webhook_url=hooks.url,
        webhook_retries=0,
    )
    rp_worker = RunPodWorker(settings, serve_http=False, progress_sink=lambda job, p: progress.append(p))
    rp_worker.start()
    try:
        yield rp_worker
    finally:
        rp_worker.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _handle(worker: RunPodWorker, job_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(asyncio.wait_for(worker.handler({"id": job_id, "input": payload}), 120))


# ------------------------------------------------------------------------------------ tests
def test_s3_delivery_uploads_once_and_returns_a_working_presigned_url(
    worker: RunPodWorker, fake_s3: MotoS3, hooks: HookReceiver
) -> None:
    assert worker.use_s3
    hooks.script = [503]  # this delivery's only attempt fails (webhook_retries=0)
    output = _handle(worker, "rp-s3-1", {"text": "xin chào các bạn.", "ref_name": VOICE})
    assert "error" not in output, output
    assert output["storage"] == "s3"
    key = f"/tts-results/f5vi/{output['filename']}"
    assert output["download_url"].startswith(fake_s3.url + key + "?")
    assert "X-Amz-Signature=" in output["download_url"]
    local = (worker.settings.output_dir / output["filename"]).read_bytes()
    response = httpx.get(output["download_url"], timeout=10)
    assert response.status_code == 200
    assert response.content == local == base64.b64decode(output["audio_base64"])
    assert fake_s3.objects[key][1] == "audio/wav"
    # timestamps and subtitles come with the output (the SRT/VTT text inline: the worker may be gone)
    assert output["timestamps"]["method"] == "estimated"
    assert output["timestamps"]["sentences"][0]["text"] == "xin chào các bạn."
    assert output["subtitle_urls"]["srt"].endswith(
        f"/tts/{output['job_id']}/subtitles?format=srt&token=" + output["confirmation_url"].split("token=")[1]
    )
    assert (
        output["subtitles"]["srt"].startswith("1\n00:00:00,000 --> ")
        and "xin chào các bạn." in output["subtitles"]["srt"]
    )
    assert output["subtitles"]["vtt"].startswith("WEBVTT")
    assert output["expires_at"] > time.time() + 6 * 24 * 3600  # the presigned URL's week
    assert fake_s3.uploads_started() == 1

    # The webhook failed: the job still succeeded, and says so.
    assert output["webhook_delivered"] is False
    assert [c["status"] for c in hooks.calls] == [503]

    # Redelivery: the stored presigned URL, no second upload, and the webhook is tried again.
    again = _handle(worker, "rp-s3-1", {"text": "xin chào các bạn.", "ref_name": VOICE})
    assert again["download_url"] == output["download_url"]
    assert fake_s3.uploads_started() == 1
    assert again["webhook_delivered"] is True
    assert [c["status"] for c in hooks.calls] == [503, 200]
    assert hooks.calls[1]["json"]["download_url"] == output["download_url"]

    # Once delivered, a further redelivery does not notify again.
    _handle(worker, "rp-s3-1", {"text": "xin chào các bạn.", "ref_name": VOICE})
    assert len(hooks.calls) == 2


def test_cancelling_the_handler_cancels_the_synthesis(
    worker: RunPodWorker, progress: list[dict[str, Any]]
) -> None:
    async def scenario() -> None:
        task = asyncio.ensure_future(
            worker.handler(
                {
                    "id": "rp-cancel-1",
                    "input": {"text": LONG_TEXT, "ref_name": VOICE, "job_id": "cancel-me", "nfe_step": 32},
                }
            )
        )
        deadline = time.monotonic() + 60
        while not any(p["job_id"] == "cancel-me" and p["stage"] == "synthesizing" for p in progress):
            assert time.monotonic() < deadline, "the job never started synthesising"
            assert not task.done(), task.result()
            await asyncio.sleep(0.05)
        task.cancel()  # what the SDK does on a RunPod cancel / stop signal
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    deadline = time.monotonic() + 30
    while True:
        job = worker.get_job("cancel-me")
        assert job is not None
        if job.is_terminal:
            break
        assert time.monotonic() < deadline, f"job still {job.state} after the handler was cancelled"
        time.sleep(0.1)
    assert job.state.value == "cancelled"
    assert job.result is None


def test_job_timeout_fails_with_a_clear_error(worker: RunPodWorker) -> None:
    worker.settings.runpod_job_timeout_seconds = 0.5
    try:
        output = _handle(
            worker, "rp-timeout-1", {"text": LONG_TEXT, "ref_name": VOICE, "job_id": "slow-1", "nfe_step": 32}
        )
    finally:
        worker.settings.runpod_job_timeout_seconds = 3600.0
    error = json.loads(output["error"])
    assert error["code"] == "timeout" and "within 0.5 s" in error["message"]
    assert output["job_id"] == "slow-1"
    deadline = time.monotonic() + 30
    while not (job := worker.get_job("slow-1")) or not job.is_terminal:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job.state.value == "cancelled"


def test_half_configured_s3_refuses_to_start_before_loading_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUCKET_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("BUCKET_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("BUCKET_SECRET_ACCESS_KEY", raising=False)

    def must_not_load(settings: Settings) -> Any:
        raise AssertionError("the model must not be loaded when the configuration is unusable")

    settings = Settings(data_dir=tmp_path / "d", output_dir=tmp_path / "o", voices_dir=REPO / "voices")
    with pytest.raises(StartupError) as caught:
        RunPodWorker(settings, engine_loader=must_not_load).start()
    assert caught.value.exit_code == EXIT_CONFIG_ERROR
    assert (
        "BUCKET_ACCESS_KEY_ID" in caught.value.message and "BUCKET_SECRET_ACCESS_KEY" in caught.value.message
    )


def test_a_handler_call_before_start_is_an_error_not_a_crash(tmp_path: Path) -> None:
    rp_worker = RunPodWorker(Settings(data_dir=tmp_path, output_dir=tmp_path))
    output = asyncio.run(rp_worker.handler({"id": "x", "input": {"text": "a", "ref_name": VOICE}}))
    assert json.loads(output["error"])["code"] == "service_unavailable"


@pytest.mark.parametrize("text", ["\x00\x00", "😀 🎉", "\u200b\u200d", "\u0301\u0300", "[" * 10_000])
def test_a_text_with_nothing_to_say_fails_at_once_without_a_job(worker: RunPodWorker, text: str) -> None:
    client_id = f"nothing-{len(text)}-{ord(text[0])}"
    output = _handle(worker, client_id, {"text": text, "ref_name": VOICE, "job_id": client_id})
    error = json.loads(output["error"])
    assert error["code"] == "invalid_text" and "read aloud" in error["message"], error
    assert worker.get_job(client_id) is None  # refused at submit: no job was created
