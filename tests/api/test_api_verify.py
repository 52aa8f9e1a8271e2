"""``verify`` through every HTTP front door (in-process app, real engine on the demo model, tiny Whisper).

The demo model says noise, so with ``F5VI_VERIFY_MAX_CER=0`` every chunk fails and takes every attempt:
what is checked is that each door takes the field (or the server default), and reports per chunk.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from f5vi.api.app import create_app
from f5vi.api.verification import VERIFICATION_HEADER
from f5vi.engine.asr import Transcriber
from f5vi.engine.synthesizer import Synthesizer
from f5vi.engine.verify import attempt_seed
from realtime_helpers import wait_job
from server_helpers import local_settings, write_voice
from tiny_whisper import tiny_whisper

TEXT = "Xin chào các bạn, hôm nay trời đẹp quá."
KEYS = {"chunk", "cer", "attempts", "seed", "transcript", "passed"}


@pytest.fixture
def verified_synth(
    demo_synth: Synthesizer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Synthesizer]:
    saved = demo_synth.transcriber
    demo_synth.transcriber = Transcriber(str(tiny_whisper(tmp_path_factory)), device="cpu")
    try:
        yield demo_synth
    finally:
        demo_synth.transcriber = saved


def _client(tmp_path: Path, synth: Synthesizer, **overrides: Any) -> TestClient:
    values: dict[str, Any] = {
        "device": "cpu",
        "normalizer": "none",
        "nfe_step": 4,
        "cleanup_interval_seconds": 0,
        "verify_max_cer": 0.0,
        "verify_max_attempts": 2,
    }
    settings = local_settings(tmp_path, **{**values, **overrides})
    write_voice(settings.voices_dir, "v1")
    return TestClient(create_app(settings, synthesizer=synth))


def _check(reports: list[dict[str, Any]], seed: int = 7) -> None:
    assert reports and all(set(r) == KEYS for r in reports)
    for r in reports:
        assert r["attempts"] == 2 and r["passed"] is False and r["cer"] > 0
        assert r["seed"] in (seed, attempt_seed(seed, r["chunk"], 2))
    assert [r["chunk"] for r in reports] == list(range(len(reports)))


def test_job_takes_verify_and_lists_each_chunk(tmp_path: Path, verified_synth: Synthesizer) -> None:
    with _client(tmp_path, verified_synth) as client:
        # one recogniser per process: the voice library's is the one verification uses
        assert client.app.state.voices.transcriber is verified_synth.transcriber  # type: ignore[attr-defined]
        accepted = client.post("/tts", json={"text": TEXT, "ref_name": "v1", "seed": 7, "verify": True})
        assert accepted.status_code == 202, accepted.text
        job = wait_job(client, accepted.json()["job_id"], timeout=300)
        assert job["state"] == "succeeded", job
        _check(job["result"]["verification"])
        assert len(job["result"]["verification"]) == job["result"]["chunk_count"]
        plain = client.post("/tts", json={"text": TEXT, "ref_name": "v1", "seed": 7})
        done = wait_job(client, plain.json()["job_id"], timeout=300)
        assert done["result"]["verification"] is None  # off by default
        bad = client.post("/tts", json={"text": TEXT, "ref_name": "v1", "verify": "yes"})
        assert bad.status_code == 422


def test_server_default_turns_it_on(tmp_path: Path, verified_synth: Synthesizer) -> None:
    with _client(tmp_path, verified_synth, verify=True) as client:
        accepted = client.post("/tts", json={"text": TEXT, "ref_name": "v1", "seed": 7})
        job = wait_job(client, accepted.json()["job_id"], timeout=300)
        _check(job["result"]["verification"])
        off = client.post("/tts", json={"text": TEXT, "ref_name": "v1", "seed": 7, "verify": False})
        assert wait_job(client, off.json()["job_id"], timeout=300)["result"]["verification"] is None


def test_openai_speech_extension_field(tmp_path: Path, verified_synth: Synthesizer) -> None:
    # "stream": false: the whole file, whose header carries the report (a streamed body's headers leave
    # before its first chunk is verified; SSE sends the report in its last event)
    # Two chunks: a stream of a one-chunk text is planned as two parts (its first audio early), so its
    # chunks would differ from the whole answer's.
    text = " ".join([TEXT] * 16)
    body = {"input": text, "voice": "v1", "response_format": "wav", "seed": 7, "verify": True}
    body["stream"] = False
    with _client(tmp_path, verified_synth) as client:
        whole = client.post("/v1/audio/speech", json=body)
        assert whole.status_code == 200, whole.text
        header = json.loads(whole.headers[VERIFICATION_HEADER])
        _check([{**r, "transcript": ""} for r in header])
        assert len(header) > 1
        sse = client.post("/v1/audio/speech", json={**body, "stream_format": "sse", "response_format": "pcm"})
        events = [json.loads(line[6:]) for line in sse.text.splitlines() if line.startswith("data: ")]
        done = events[-1]
        assert done["type"] == "speech.audio.done"
        _check(done["verification"])
        assert [{k: v for k, v in r.items() if k != "transcript"} for r in done["verification"]] == header
        streamed = np.frombuffer(
            b"".join(base64.b64decode(e["audio"]) for e in events[:-1]), dtype="<i2"
        ).astype(np.float32)
        wave, _ = sf.read(io.BytesIO(whole.content), dtype="float32")
        np.testing.assert_allclose(streamed / 32768.0, wave, atol=2e-3)  # the same kept attempts


def test_websocket_done_frame_lists_each_chunk(tmp_path: Path, verified_synth: Synthesizer) -> None:
    with _client(tmp_path, verified_synth) as client, client.websocket_connect("/tts/stream") as ws:
        assert json.loads(ws.receive_text())["type"] == "ready"
        ws.send_text(json.dumps({"id": "a", "text": TEXT, "voice": "v1", "seed": 7, "verify": True}))
        assert json.loads(ws.receive_text())["type"] == "start"
        while (frame := json.loads(ws.receive_text()))["type"] == "chunk":
            ws.receive_bytes()
        assert frame["type"] == "done", frame
        _check(frame["verification"])


def test_a_job_is_cancelled_while_it_resamples(tmp_path: Path, verified_synth: Synthesizer) -> None:
    """Progress counts the re-samplings; a kill during them cancels the job (checked between attempts
    and within one ODE step)."""
    import time

    with _client(tmp_path, verified_synth, verify_max_attempts=10) as client:
        body = {"text": TEXT, "ref_name": "v1", "seed": 7, "verify": True, "nfe_step": 16}
        job_id = client.post("/tts", json=body).json()["job_id"]
        deadline = time.monotonic() + 300
        while (job := client.get(f"/tts/progress/{job_id}").json())["stage"] != "resampling":
            assert job["state"] in ("queued", "running"), job
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert job["chunk_count"] >= 2  # samplings planned: the one chunk, then its re-samplings
        assert client.post(f"/tts/kill/{job_id}").status_code in (200, 202)
        assert wait_job(client, job_id, timeout=300)["state"] == "cancelled"
