"""Engine-turn calls (a voice's transcription) run between ODE steps (issue 25, item 3).

``POST /normalize`` for a voice without a transcript used to queue the transcription behind every
running job (a plain call waited for the engine to drain and ran alone), so a preview waited for a
long job to finish, and everything behind it for the preview. Now the transcription runs between two
ODE steps of the running job: the preview answers while the job still runs. Real engine (demo
model), real PhoWhisper architecture (tiny random weights, ``tests/tiny_whisper.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from f5vi.api.app import create_app
from f5vi.engine.synthesizer import Synthesizer
from realtime_helpers import LONG_TEXT, wait_job
from server_helpers import local_settings, poll_until, write_voice
from tiny_whisper import tiny_whisper


@pytest.fixture
def client(
    tmp_path: Path, demo_synth: Synthesizer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    settings = local_settings(
        tmp_path,
        device="cpu",
        normalizer="none",
        nfe_step=16,
        cleanup_interval_seconds=0,
        asr_model=str(tiny_whisper(tmp_path_factory)),
    )
    write_voice(settings.voices_dir, "v1")
    write_voice(settings.voices_dir, "untranscribed", transcript=None)
    with TestClient(create_app(settings, synthesizer=demo_synth)) as test_client:
        yield test_client


def test_a_transcription_runs_beside_a_long_job_instead_of_after_it(client: TestClient) -> None:
    accepted = client.post("/tts", json={"text": " ".join([LONG_TEXT] * 3), "ref_name": "v1"})
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    poll_until(lambda: client.get(f"/tts/progress/{job_id}").json(), lambda p: p["stage"] == "synthesizing")

    preview = client.post("/normalize", json={"text": "Xin chào các bạn.", "ref_name": "untranscribed"})
    assert preview.status_code == 200, preview.text
    assert preview.json()["reference_text"].strip()  # transcribed
    during = client.get(f"/tts/progress/{job_id}").json()
    assert during["state"] == "running", during  # it did not wait for the job to drain

    client.post(f"/tts/kill/{job_id}")
    assert wait_job(client, job_id, timeout=120)["state"] == "cancelled"
