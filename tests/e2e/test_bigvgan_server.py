"""A live server with a BigVGAN model directory (random-weight demo, NVIDIA's layout): the job API, the
OpenAI speech endpoint and the model reports all work with the second vocoder."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from server_helpers import LiveServer, poll_until, server_env, write_voice


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from f5vi.engine.demo import make_demo_model

    root = tmp_path_factory.mktemp("bigvgan-e2e")
    write_voice(root / "voices", "v1")
    model = make_demo_model(root / "model", vocoder="bigvgan")
    env = server_env(root, model, vocoder=model / "bigvgan")
    with LiveServer(root, env) as live:
        live.start()
        yield live


def test_health_status_and_models_report_bigvgan(server: LiveServer) -> None:
    health = server.client.get("/health").json()
    assert health["status"] == "healthy" and health["model"]["vocoder_type"] == "bigvgan"
    assert health["model"]["vocoder"] == "bigvgan" and health["is_demo"] is True
    status = server.client.get("/status").json()
    assert status["model"]["vocoder_type"] == "bigvgan"
    models = server.client.get("/v1/models").json()["data"]
    assert models and {m["vocoder"] for m in models} == {"bigvgan"}
    assert "vocoder=" in server.log_tail(400) and "(bigvgan)" in server.log_tail(400)


def test_a_job_completes_with_decodable_audio(server: LiveServer) -> None:
    accepted = server.client.post(
        "/tts",
        json={"text": "Xin chào các bạn, hôm nay trời đẹp.", "ref_name": "v1", "seed": 5, "nfe_step": 4},
    )
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]

    def view() -> dict[str, Any]:
        return server.client.get(f"/tts/progress/{job_id}").json()

    final, _ = poll_until(view, lambda v: v["state"] in ("succeeded", "failed", "cancelled"), timeout=120)
    assert final["state"] == "succeeded", final
    download = server.client.get(final["result"]["wav_url"])
    assert download.status_code == 200
    audio, sr = sf.read(io.BytesIO(download.content), dtype="float32")
    assert sr == 24_000 and len(audio) > 12_000 and np.isfinite(audio).all()
    assert float(np.abs(audio).max()) > 0.001
    assert abs(len(audio) / sr - final["result"]["duration_seconds"]) < 0.01


def test_openai_speech_with_bigvgan(server: LiveServer) -> None:
    response = server.client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "voice": "v1", "input": "Xin chào.", "response_format": "wav"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    audio, sr = sf.read(io.BytesIO(response.content), dtype="float32")
    assert sr == 24_000 and len(audio) > 2_000 and np.isfinite(audio).all()


def test_openai_stream_equals_the_whole_response(server: LiveServer) -> None:
    """Over HTTP: the streamed PCM of a several-chunk text is the non-streamed PCM (same seed)."""
    text = (
        "Hà Nội là thủ đô của Việt Nam. Thành phố có nhiều hồ nước đẹp và những con phố cổ kính. "
        "Mùa thu ở đây trời trong xanh, gió nhẹ và lá vàng rơi khắp nơi. "
        "Người dân thường dậy sớm để tập thể dục quanh hồ, rồi ăn một bát phở nóng trước khi đi làm."
    )
    body = {"voice": "v1", "input": text, "response_format": "pcm", "seed": 9, "nfe_step": 4}
    whole = server.client.post("/v1/audio/speech", json=body, timeout=180)
    assert whole.status_code == 200, whole.text
    pieces = []
    with server.client.stream("POST", "/v1/audio/speech", json={**body, "stream": True}, timeout=180) as rsp:
        assert rsp.status_code == 200
        pieces = list(rsp.iter_bytes())
    streamed = np.frombuffer(b"".join(pieces), dtype="<i2").astype(np.float32) / 32768
    expected = np.frombuffer(whole.content, dtype="<i2").astype(np.float32) / 32768
    assert len(pieces) >= 2 and streamed.shape == expected.shape and len(expected) > 24_000
    np.testing.assert_allclose(streamed, expected, atol=2e-4)  # the Vocos path's bound (PCM: ~6 LSB)
