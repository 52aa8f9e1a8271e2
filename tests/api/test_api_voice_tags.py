"""Multi-voice text through the app (in-process, real engine on the demo model).

``[voice_id]`` tags in the text of ``POST /tts``, ``POST /normalize``, ``POST /v1/audio/speech`` and
``WS /tts/stream``: the result lists its voice segments in order, its audio is the cross-fade of the
parts synthesised alone with their voices, and a tag naming no voice is a 404 before anything is
queued.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from f5vi.api.app import create_app
from f5vi.engine.audio import cross_fade_concat
from f5vi.engine.synthesizer import Synthesizer
from realtime_helpers import wait_job
from server_helpers import assert_error_shape, local_settings, voice_wave, write_voice

PART_1 = "Xin chào các bạn, hôm nay trời đẹp quá. Chúng ta cùng đi dạo nhé."
PART_2 = "Tạm biệt, hẹn gặp lại vào ngày mai."
TWO_VOICES = f"{PART_1} [v2] {PART_2}"
V2_TRANSCRIPT = "một hai ba bốn năm sáu bảy tám chín mười, mười một mười hai."
HEADER = struct.Struct("<4sIII")
PCM_ATOL = 2e-3
"""16-bit output (3e-5 a step) on top of the engine's batching tolerance (5e-4)."""


@pytest.fixture
def client(tmp_path: Path, demo_synth: Synthesizer) -> Iterator[TestClient]:
    settings = local_settings(
        tmp_path, device="cpu", normalizer="none", nfe_step=4, cleanup_interval_seconds=0
    )
    write_voice(settings.voices_dir, "v1")
    # v2: another clip (longer, quieter, other words): its own chunk budget, durations and gain
    sf.write(settings.voices_dir / "v2.wav", voice_wave(5.0, seed=3) * 0.1, 24_000, subtype="PCM_16")
    (settings.voices_dir / "v2.txt").write_text(V2_TRANSCRIPT, encoding="utf-8")
    with TestClient(create_app(settings, synthesizer=demo_synth)) as test_client:
        yield test_client


def _job(client: TestClient, text: str, ref_name: str) -> tuple[dict[str, Any], np.ndarray]:
    accepted = client.post("/tts", json={"text": text, "ref_name": ref_name, "seed": 7})
    assert accepted.status_code == 202, accepted.text
    job = wait_job(client, accepted.json()["job_id"], timeout=300)
    assert job["state"] == "succeeded", job
    audio = client.get(job["result"]["wav_url"])
    assert audio.status_code == 200
    wave, sample_rate = sf.read(io.BytesIO(audio.content), dtype="float32")
    assert sample_rate == 24_000
    return job["result"], wave


def test_two_voices_through_tts_list_their_segments_and_join_their_parts(client: TestClient) -> None:
    result, wave = _job(client, TWO_VOICES, "v1")
    alone_1, wave_1 = _job(client, PART_1, "v1")
    alone_2, wave_2 = _job(client, PART_2, "v2")

    assert result["segments"] == [
        {"voice_id": "v1", "chunk_count": alone_1["chunk_count"]},
        {"voice_id": "v2", "chunk_count": alone_2["chunk_count"]},
    ]
    assert result["chunk_count"] == alone_1["chunk_count"] + alone_2["chunk_count"]
    assert result["sample_used"] == "v1" and result["text_ref"] == alone_1["text_ref"]
    assert alone_1["text_ref"] != alone_2["text_ref"]
    assert result["normalized_text"] == f"{alone_1['normalized_text']} {alone_2['normalized_text']}"
    assert alone_1["segments"] == [{"voice_id": "v1", "chunk_count": alone_1["chunk_count"]}]

    fade = int(0.15 * 24_000)  # F5VI_CROSS_FADE_SECONDS: both parts are far longer
    assert len(wave) == len(wave_1) + len(wave_2) - fade
    np.testing.assert_allclose(wave, cross_fade_concat([wave_1, wave_2], 24_000, 0.15), atol=PCM_ATOL)

    preview = client.post("/normalize", json={"text": TWO_VOICES, "ref_name": "v1"}).json()
    assert abs(preview["estimated_duration_seconds"] - result["duration_seconds"]) <= 0.002


def test_normalize_shows_each_chunks_voice_and_each_voices_budget(client: TestClient) -> None:
    text = f"[v2] {PART_1} [v1] {PART_2} [v2] {PART_2} [[v1] đọc nguyên văn."
    plan = client.post("/normalize", json={"text": text, "ref_name": "v1"})
    assert plan.status_code == 200, plan.text
    body = plan.json()
    assert [s["voice_id"] for s in body["segments"]] == ["v2", "v1", "v2"]
    assert body["voice_id"] == "v1"  # the request's own voice, though it says only the middle part
    assert sum(s["chunk_count"] for s in body["segments"]) == body["chunk_count"] == len(body["chunks"])
    voices = [c["voice_id"] for c in body["chunks"]]
    assert voices == [s["voice_id"] for s in body["segments"] for _ in range(s["chunk_count"])]
    first, second, third = body["segments"]
    assert first["max_chunk_bytes"] == third["max_chunk_bytes"] != second["max_chunk_bytes"]
    assert first["reference_text"] == body["reference_text"] != second["reference_text"]
    assert third["normalized_text"].endswith("[v1] đọc nguyên văn.")  # "[[" is a literal "["
    one = client.post("/normalize", json={"text": PART_1, "ref_name": "v1"}).json()
    assert one["segments"] == [
        {
            "voice_id": "v1",
            "chunk_count": one["chunk_count"],
            "normalized_text": one["normalized_text"],
            "reference_text": one["reference_text"],
            "max_chunk_bytes": one["max_chunk_bytes"],
            "speed": one["speed"],
            "pause_before_seconds": 0.0,
            "char_start": 0,
            "char_end": len(PART_1),
            "text_given": PART_1,
        }
    ]


def _queue_is_empty(client: TestClient) -> None:
    status = client.get("/status").json()
    assert status["queue_depth"] == 0 and not status["busy"], status
    assert sum(status["jobs"].values()) == 0, status


@pytest.mark.parametrize(
    ("text", "status", "code"),
    [
        (f"{PART_1} [nobody] {PART_2}", 404, "voice_not_found"),
        (f"{PART_1} [a..b] {PART_2}", 400, "invalid_voice_name"),
        ("[v2] [v1]  ", 422, "invalid_text"),
        (" ".join(f"[x{i}] câu." for i in range(17)), 422, "invalid_text"),
    ],
)
def test_bad_tags_are_refused_before_anything_is_queued(
    client: TestClient, text: str, status: int, code: str
) -> None:
    for path, body in (
        ("/tts", {"text": text, "ref_name": "v1"}),
        ("/normalize", {"text": text, "ref_name": "v1"}),
        ("/v1/audio/speech", {"input": text, "voice": "v1", "response_format": "wav"}),
    ):
        error = assert_error_shape(client.post(path, json=body), status, code)["error"]
        if status != 422:
            assert "[[" in error["message"], error  # how to write a literal "["
    _queue_is_empty(client)


def test_openai_speech_with_two_voices_is_the_jobs_audio(client: TestClient) -> None:
    _, wave = _job(client, TWO_VOICES, "v1")
    body = {"input": TWO_VOICES, "voice": "v1", "response_format": "wav", "seed": 7}
    speech = client.post("/v1/audio/speech", json=body)
    assert speech.status_code == 200, speech.text
    spoken, _ = sf.read(io.BytesIO(speech.content), dtype="float32")
    assert len(spoken) == len(wave)
    np.testing.assert_allclose(spoken, wave, atol=PCM_ATOL)


def test_websocket_with_two_voices_streams_the_jobs_audio(client: TestClient) -> None:
    _, wave = _job(client, TWO_VOICES, "v1")
    with client.websocket_connect("/tts/stream") as ws:
        assert json.loads(ws.receive_text())["type"] == "ready"
        ws.send_text(json.dumps({"id": "duo", "text": TWO_VOICES, "voice": "v1", "seed": 7}))
        start = json.loads(ws.receive_text())
        assert start["type"] == "start" and start["voice"] == "v1", start
        assert start["tagged_voices"] == ["v2"]
        pcm = bytearray()
        while (frame := json.loads(ws.receive_text()))["type"] == "chunk":
            binary = ws.receive_bytes()
            assert HEADER.unpack_from(binary)[3] == frame["samples"]
            pcm.extend(binary[HEADER.size :])
        assert frame["type"] == "done", frame
        ws.send_text(json.dumps({"text": f"[nobody] {PART_2}", "voice": "v1", "id": "x"}))
        error = json.loads(ws.receive_text())
        assert error["type"] == "error" and error["code"] == "voice_not_found" and "[[" in error["message"]
    streamed = np.frombuffer(bytes(pcm), dtype="<i2").astype(np.float32) / 32768
    assert len(streamed) == len(wave)
    np.testing.assert_allclose(streamed, wave, atol=PCM_ATOL)
