"""The normalisation preview (``POST /normalize``, ``f5vi normalize``) shows exactly what synthesis reads.

Every comparison is against a real synthesis on the demo model with the real vinorm normaliser: the
preview's text, chunks and warnings must equal the job's, and its duration estimate the audio's length.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from f5vi.api.app import create_app
from f5vi.config import Settings
from f5vi.engine.types import ReferenceVoice, SynthesisRequest
from realtime_helpers import wait_job
from server_helpers import assert_error_shape, demo_model, write_voice

if TYPE_CHECKING:
    from f5vi.engine.synthesizer import Synthesizer

MIXED = (
    "Ngày 2/9/2024, TP.HCM có 1.250 người tham dự; vé giá 150.000đ. "
    "Lúc 19h30, GS. Trần Văn Bình nói về ngân sách 2,5 tỷ USD, tăng 12% so với năm 2023."
)
"""Numbers, a date, money, a time, a percentage and abbreviations in one text."""

LONG = " ".join([MIXED] * 3)  # several chunks for the reference voice


@pytest.fixture(scope="module")
def vinorm_synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesizer]:
    """The real engine on the demo model with the real vinorm normaliser (one torch thread)."""
    import torch

    from f5vi.engine.synthesizer import Synthesizer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = demo_model(tmp_path_factory.getbasetemp())
    settings = Settings(
        model=str(model), vocoder=str(model / "vocos"), device="cpu", normalizer="vinorm", nfe_step=2
    )
    try:
        yield Synthesizer.from_settings(settings)
    finally:
        torch.set_num_threads(threads)


def _settings(tmp_path: Path, model: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        data_dir=tmp_path / "data",
        output_dir=tmp_path / "output",
        voices_dir=tmp_path / "voices",
        model=str(model),
        normalizer="vinorm",
        nfe_step=2,
        cleanup_interval_seconds=0,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def client(tmp_path: Path, vinorm_synth: Synthesizer) -> Iterator[TestClient]:
    settings = _settings(tmp_path, Path(vinorm_synth.info.model))
    write_voice(settings.voices_dir, "v1")
    with TestClient(create_app(settings, synthesizer=vinorm_synth)) as test_client:
        yield test_client


# ------------------------------------------------------------------------------------------ engine
def test_the_plan_is_what_synthesis_reads_and_its_estimate_the_audio_length(
    vinorm_synth: Synthesizer, tmp_path: Path
) -> None:
    voice = write_voice(tmp_path / "voices", "v1")
    request = SynthesisRequest(
        text=LONG,
        reference=ReferenceVoice(audio_path=voice, transcript="xin chào các bạn, hôm nay trời đẹp quá."),
        nfe_step=2,
        seed=3,
    )
    plan = vinorm_synth.plan(request)
    result = vinorm_synth.synthesize(request)
    assert plan.normalizer_used == "vinorm"
    assert len(plan.chunks) > 1
    assert plan.normalized_text == result.normalized_text
    assert [c.text for c in plan.chunks] == result.chunks
    assert list(plan.warnings) == result.warnings
    assert plan.reference_text == result.reference_text
    assert "hai tháng chín năm hai nghìn không trăm hai mươi tư" in plan.normalized_text
    assert "một trăm năm mươi nghìn đồng" in plan.normalized_text
    assert not any(ch.isdigit() for ch in plan.normalized_text)
    expected_samples = round(plan.estimated_seconds(request.cross_fade_seconds) * 24_000)
    assert len(result.audio) == expected_samples


# ------------------------------------------------------------------------------------------ API
def test_normalize_equals_the_jobs_normalized_text(client: TestClient) -> None:
    body = {"text": MIXED, "ref_name": "v1", "speed": 1.0}
    preview = client.post("/normalize", json=body)
    assert preview.status_code == 200, preview.text
    plan = preview.json()
    assert plan["voice_id"] == "v1" and plan["speed"] == 1.0 and plan["normalizer"] == "vinorm"
    assert plan["chunk_count"] == len(plan["chunks"]) >= 1
    assert " ".join(c["text"] for c in plan["chunks"]) == plan["normalized_text"]
    for chunk in plan["chunks"]:
        assert chunk["bytes"] == len(chunk["text"].encode()) and chunk["estimated_seconds"] > 0
    assert "thành phố hồ chí minh" in plan["normalized_text"]
    assert "mười chín giờ ba mươi" in plan["normalized_text"]

    accepted = client.post("/tts", json=body)  # the very same body
    assert accepted.status_code == 202, accepted.text
    job = wait_job(client, accepted.json()["job_id"], timeout=300)
    assert job["state"] == "succeeded", job
    result = job["result"]
    assert result["normalized_text"] == plan["normalized_text"]
    assert result["chunk_count"] == plan["chunk_count"]
    assert result["text_ref"] == plan["reference_text"]
    assert result["warnings"] == plan["warnings"]
    # rounded to the millisecond on both sides
    assert abs(result["duration_seconds"] - plan["estimated_duration_seconds"]) <= 0.002


def test_normalize_reports_unreadable_symbols_and_chunks_by_speed(client: TestClient) -> None:
    plan = client.post("/normalize", json={"text": "Tuyệt vời 😀 quá!", "ref_name": "v1"}).json()
    assert any("😀" in warning for warning in plan["warnings"]), plan
    assert "😀" not in plan["normalized_text"]
    slow = client.post("/normalize", json={"text": LONG, "ref_name": "v1", "speed": 0.5}).json()
    fast = client.post("/normalize", json={"text": LONG, "ref_name": "v1", "speed": 2.0}).json()
    assert slow["max_chunk_bytes"] < fast["max_chunk_bytes"]
    assert slow["chunk_count"] > fast["chunk_count"]
    assert slow["estimated_duration_seconds"] > fast["estimated_duration_seconds"]
    assert slow["normalized_text"] == fast["normalized_text"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"text": "xin chào", "ref_name": "nobody"}, 404, "voice_not_found"),
        ({"text": "xin chào", "ref_name": "../../etc/passwd"}, 400, "invalid_voice_name"),
        ({"text": "   ", "ref_name": "v1"}, 422, "validation_error"),
        ({"ref_name": "v1"}, 422, "validation_error"),
        ({"text": "xin chào", "ref_name": "v1", "speed": 5}, 422, "validation_error"),
        ({"text": "😀 🎉", "ref_name": "v1"}, 422, "invalid_text"),
        ({"text": "a" * 20_001, "ref_name": "v1"}, 422, "invalid_text"),  # the engine's F5VI_MAX_TEXT_CHARS
    ],
)
def test_normalize_bad_input_is_a_4xx_json_error(
    client: TestClient, body: dict[str, Any], status: int, code: str
) -> None:
    assert_error_shape(client.post("/normalize", json=body), status, code)


def test_normalize_without_ref_name_uses_the_default_voice(tmp_path: Path, vinorm_synth: Synthesizer) -> None:
    """As ``f5vi normalize``: F5VI_DEFAULT_VOICE, else the first voice in id order."""
    model = Path(vinorm_synth.info.model)
    for default, expected in ((None, "a_voice"), ("b_voice", "b_voice")):
        settings = _settings(tmp_path / str(default), model, default_voice=default)
        for voice_id in ("b_voice", "a_voice"):
            write_voice(settings.voices_dir, voice_id)
        with TestClient(create_app(settings, synthesizer=vinorm_synth)) as client:
            plan = client.post("/normalize", json={"text": "xin chào"})
            assert plan.status_code == 200, plan.text
            assert plan.json()["voice_id"] == expected
    empty = _settings(tmp_path / "empty", model)
    with TestClient(create_app(empty, synthesizer=vinorm_synth)) as client:
        response = client.post("/normalize", json={"text": "xin chào"})
        message = assert_error_shape(response, 404, "voice_not_found")["error"]["message"]
        assert "POST /voices" in message and "F5VI_DEFAULT_VOICE" in message


def test_normalize_needs_the_key_and_a_loaded_engine(tmp_path: Path, vinorm_synth: Synthesizer) -> None:
    model = Path(vinorm_synth.info.model)
    keyed = _settings(tmp_path / "a", model, api_key="k")
    write_voice(keyed.voices_dir, "v1")
    with TestClient(create_app(keyed, synthesizer=vinorm_synth)) as client:
        body = {"text": "xin chào", "ref_name": "v1"}
        assert_error_shape(client.post("/normalize", json=body), 401, "unauthorized")
        ok = client.post("/normalize", json=body, headers={"Authorization": "Bearer k"})
        assert ok.status_code == 200, ok.text

    import threading

    release = threading.Event()

    def still_loading(settings: Settings) -> Synthesizer:
        release.wait(60)
        raise RuntimeError("test ended")

    loading = _settings(tmp_path / "b", model)
    write_voice(loading.voices_dir, "v1")
    try:
        with TestClient(create_app(loading, engine_loader=still_loading)) as client:
            response = client.post("/normalize", json={"text": "xin chào", "ref_name": "v1"})
            assert_error_shape(response, 503, "service_unavailable")
            assert response.headers["Retry-After"]
    finally:
        release.set()


# ------------------------------------------------------------------------------------------ CLI
def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "f5vi", "normalize", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_prints_what_the_api_answers(
    client: TestClient, vinorm_synth: Synthesizer, repo_root: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("F5VI_")}
    env.update(
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        F5VI_MODEL=vinorm_synth.info.model,
        F5VI_NORMALIZER="vinorm",
        F5VI_VOICES_DIR=str(repo_root / "voices"),
    )
    body = {"text": LONG, "ref_name": "vi_north_male", "speed": 1.1}
    shipped = client.app.state.settings.voices_dir
    for name in ("vi_north_male.wav", "vi_north_male.txt"):
        (shipped / name).write_bytes((repo_root / "voices" / name).read_bytes())
    api = client.post("/normalize", json=body).json()

    done = _cli([LONG, "--voice", "vi_north_male", "--speed", "1.1", "--json"], env, repo_root)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == api

    readable = _cli(["Năm 2024 có 365 ngày."], env, repo_root)  # default voice: the first one
    assert readable.returncode == 0, readable.stderr
    assert readable.stdout.startswith("năm hai nghìn không trăm hai mươi tư có ba trăm sáu mươi lăm ngày.")
    assert "with voice vi_central_male" in readable.stdout and "[1]" in readable.stdout

    missing = _cli(["xin chào", "--voice", "nobody"], env, repo_root)
    assert missing.returncode == 2 and "voice_not_found" in missing.stderr
    assert "Traceback" not in missing.stderr
    empty = _cli(["  ", "--voice", "vi_north_male"], env, repo_root)
    assert empty.returncode == 2 and "invalid_text" in empty.stderr
