"""Timestamps through the app (in-process, real engine on the demo model): the job result, the
token-protected subtitles route, and ``/v1/audio/speech`` with ``timestamps: true``."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import soundfile as sf
import srt
from fastapi.testclient import TestClient

from f5vi.api.app import create_app
from f5vi.engine.synthesizer import Synthesizer
from realtime_helpers import wait_job
from server_helpers import assert_error_shape, local_settings, write_voice

KEY = "timing-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
TEXT = "Xin chào các bạn, hôm nay trời đẹp quá. [v2] Tạm biệt [[nhé], hẹn gặp lại vào ngày mai."


@pytest.fixture
def client(tmp_path: Path, demo_synth: Synthesizer) -> Iterator[TestClient]:
    settings = local_settings(tmp_path, device="cpu", normalizer="none", nfe_step=4, api_key=KEY)
    write_voice(settings.voices_dir, "v1")
    write_voice(settings.voices_dir, "v2")
    with TestClient(create_app(settings, synthesizer=demo_synth)) as test_client:
        yield test_client


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_job_result_has_timestamps_and_token_protected_subtitles(client: TestClient) -> None:
    accepted = client.post("/tts", json={"text": TEXT, "ref_name": "v1", "seed": 3}, headers=AUTH)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    client.headers.update(AUTH)
    job = wait_job(client, job_id, timeout=300)
    client.headers.pop("Authorization")
    assert job["state"] == "succeeded", job
    result = job["result"]
    stamps = result["timestamps"]
    assert stamps["method"] == "estimated" and "F5VI_ALIGNER_MODEL" in stamps["notes"][0]
    assert [c["voice_id"] for c in stamps["chunks"]][-1] == "v2"
    assert stamps["chunks"][-1]["end"] == pytest.approx(result["duration_seconds"], abs=1e-3)
    assert [s["text"] for s in stamps["sentences"]] == [
        "Xin chào các bạn, hôm nay trời đẹp quá.",
        "Tạm biệt [nhé], hẹn gặp lại vào ngày mai.",
    ]
    for item in stamps["sentences"] + stamps["words"]:
        assert 0 <= item["start"] <= item["end"] <= result["duration_seconds"] + 1e-6
    written = {TEXT[w["char_start"] : w["char_end"]] for w in stamps["words"]}
    assert "[[nhé]," in written and "[v2]" not in written

    urls = result["subtitle_urls"]
    response = client.get(_path(urls["srt"]))  # no key: the URL's token is enough
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-subrip")
    cues = list(srt.parse(response.text))
    assert cues and cues[0].content.startswith("Xin chào")
    assert "[nhé]," in " ".join(c.content for c in cues)
    vtt = client.get(_path(urls["vtt"]))
    assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT")
    as_json = client.get(_path(urls["json"])).json()
    assert [c["text"] for c in as_json["cues"]] == [c.content for c in cues]

    assert_error_shape(client.get(f"/tts/{job_id}/subtitles?format=srt&token=wrong"), 403, "invalid_token")
    assert_error_shape(client.get(f"/tts/{job_id}/subtitles"), 401, "unauthorized")
    assert_error_shape(client.get("/tts/unknown/subtitles?token=x"), 403, "invalid_token")
    assert client.get(f"/tts/{job_id}/subtitles?format=vtt", headers=AUTH).text == vtt.text
    assert_error_shape(client.get("/tts/unknown/subtitles", headers=AUTH), 404, "job_not_found")
    assert_error_shape(client.get(f"/tts/{job_id}/subtitles?format=ass", headers=AUTH), 422)


def test_openai_speech_answers_captioned_json_with_timestamps(client: TestClient) -> None:
    body = {"input": "Xin chào 2024 bạn, hẹn gặp lại.", "voice": "v1", "response_format": "wav"}
    answer = client.post("/v1/audio/speech", json={**body, "timestamps": True, "seed": 1}, headers=AUTH)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    data = answer.json()
    wave, sample_rate = sf.read(io.BytesIO(base64.b64decode(data["audio"])))
    assert data["audio_format"] == "wav" and sample_rate == data["sample_rate"] == 24_000
    assert data["method"] == data["detail"]["method"] == "estimated"
    assert [w["word"] for w in data["timestamps"]] == body["input"].split()
    assert [body["input"][w["char_start"] : w["char_end"]] for w in data["timestamps"]] == body[
        "input"
    ].split()
    assert data["detail"]["chunks"][-1]["end_sample"] == len(wave)
    assert data["timestamps"][-1]["end_time"] <= len(wave) / sample_rate

    plain = client.post("/v1/audio/speech", json=body, headers=AUTH)
    assert plain.status_code == 200 and plain.content[:4] == b"RIFF"
    refused = client.post("/v1/audio/speech", json={**body, "timestamps": True, "stream": True}, headers=AUTH)
    assert_error_shape(refused, 422, "invalid_parameter")


def test_websocket_chunk_frames_carry_the_same_word_times_as_the_job(client: TestClient) -> None:
    accepted = client.post("/tts", json={"text": TEXT, "ref_name": "v1", "seed": 5}, headers=AUTH)
    client.headers.update(AUTH)
    job = wait_job(client, accepted.json()["job_id"], timeout=300)
    assert job["state"] == "succeeded", job
    expected = [
        {k: w[k] for k in ("text", "start", "end", "char_start", "char_end")}
        for w in job["result"]["timestamps"]["words"]
    ]
    streamed: list[dict[str, object]] = []
    with client.websocket_connect("/tts/stream") as ws:
        assert json.loads(ws.receive_text())["type"] == "ready"
        ws.send_text(json.dumps({"text": TEXT, "voice": "v1", "seed": 5}))
        assert json.loads(ws.receive_text())["type"] == "start"
        while (frame := json.loads(ws.receive_text()))["type"] == "chunk":
            ws.receive_bytes()
            end = (frame["offset_samples"] + frame["samples"]) / 24_000
            assert all(w["start"] < end for w in frame["words"])  # each word comes with its audio
            streamed.extend(frame["words"])
        assert frame["type"] == "done", frame
    assert streamed == expected
