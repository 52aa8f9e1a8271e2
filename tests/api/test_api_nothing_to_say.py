"""Texts with nothing to say are refused at submit, on every front door (issue 25, item 5).

NUL-only, emoji-only, zero-width-only, combining-marks-only and ``[`` x 10000 texts used to get 202
from ``/tts`` and fail ``invalid_text`` only when they ran (OpenAI speech answered after 28 s in the
queue). Now :func:`~f5vi.engine.validation.check_text` refuses them in the request builder every
front door goes through; nothing is queued. (RunPod: ``tests/runpod``; CLI: ``tests/cli``.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from f5vi.api.app import create_app
from f5vi.engine.synthesizer import Synthesizer
from server_helpers import assert_error_shape, local_settings, write_voice

NOTHING_TO_SAY = [
    "\x00\x00\x00",
    "😀 🎉 👍",
    "\u200b\u200c\u200d\ufeff",
    "\u0301\u0300\u0303",
    "[" * 10_000,
    "Xin chào. [v1] 😀",  # one voice's part has nothing to say
]


@pytest.fixture
def client(tmp_path: Path, demo_synth: Synthesizer) -> Iterator[TestClient]:
    settings = local_settings(
        tmp_path, device="cpu", normalizer="none", nfe_step=4, cleanup_interval_seconds=0
    )
    write_voice(settings.voices_dir, "v1")
    with TestClient(create_app(settings, synthesizer=demo_synth)) as test_client:
        yield test_client


@pytest.mark.parametrize("text", NOTHING_TO_SAY)
def test_nothing_to_say_is_422_at_submit_on_every_http_door(client: TestClient, text: str) -> None:
    for path, body in (
        ("/tts", {"text": text, "ref_name": "v1"}),
        ("/normalize", {"text": text, "ref_name": "v1"}),
        ("/v1/audio/speech", {"input": text, "voice": "v1", "response_format": "wav"}),
    ):
        error = assert_error_shape(client.post(path, json=body), 422, "invalid_text")["error"]
        assert "read aloud" in error["message"], (path, error)
    with client.websocket_connect("/tts/stream") as ws:
        assert json.loads(ws.receive_text())["type"] == "ready"
        ws.send_text(json.dumps({"id": "x", "text": text, "voice": "v1"}))
        frame = json.loads(ws.receive_text())
        assert frame["type"] == "error" and frame["code"] == "invalid_text", frame
    status = client.get("/status").json()
    assert status["queue_depth"] == 0 and sum(status["jobs"].values()) == 0, status


@pytest.mark.parametrize("text", ["Xin chào.", "100%", "$", "3", "a\u0301"])
def test_anything_that_may_be_read_is_accepted(client: TestClient, text: str) -> None:
    response = client.post("/tts", json={"text": text, "ref_name": "v1"})
    assert response.status_code == 202, response.text
    client.post(f"/tts/kill/{response.json()['job_id']}")
