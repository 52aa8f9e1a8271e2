"""Output retention through the app (in-process, real engine on the demo model): the periodic task
removes outputs past F5VI_OUTPUT_TTL, confirmed ones sooner; the API then answers 410."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from f5vi.api.app import create_app
from f5vi.engine.synthesizer import Synthesizer
from server_helpers import assert_error_shape, local_settings, poll_until, write_voice


def test_outputs_expire_and_confirmed_ones_sooner(tmp_path: Path, demo_synth: Synthesizer) -> None:
    settings = local_settings(
        tmp_path,
        device="cpu",
        normalizer="none",
        output_ttl_seconds=4.0,
        confirmed_output_ttl_seconds=0.5,
        cleanup_interval_seconds=0.25,
    )
    write_voice(settings.voices_dir, "v1")
    with TestClient(create_app(settings, synthesizer=demo_synth)) as client:

        def run_job(text: str) -> dict[str, Any]:
            job_id = client.post("/tts", json={"text": text, "ref_name": "v1", "nfe_step": 4}).json()[
                "job_id"
            ]
            final, _ = poll_until(
                lambda: client.get(f"/tts/progress/{job_id}").json(),
                lambda v: v["state"] in ("succeeded", "failed"),
                timeout=60,
                interval=0.05,
            )
            assert final["state"] == "succeeded", final
            return final

        kept, confirmed = run_job("Giữ lại."), run_job("Xác nhận.")
        assert client.post(confirmed["result"]["confirmation_url"]).status_code == 200
        gone, _ = poll_until(
            lambda: client.get(f"/tts/progress/{confirmed['job_id']}").json(),
            lambda v: not v["result"]["output_available"],
            timeout=10,
            interval=0.1,
        )
        # Removed because it was confirmed, not by the TTL: the older unconfirmed output is still there.
        assert_error_shape(client.get(gone["result"]["wav_url"]), 410, "output_expired")
        assert not (settings.output_dir / confirmed["filename"]).exists()
        assert client.get(kept["result"]["wav_url"]).status_code == 200  # unconfirmed: still there
        poll_until(
            lambda: client.get(f"/tts/progress/{kept['job_id']}").json(),
            lambda v: not v["result"]["output_available"],
            timeout=15,
            interval=0.2,
        )
        assert_error_shape(client.get(kept["result"]["wav_url"]), 410, "output_expired")
        assert list(settings.output_dir.iterdir()) == []
        # the job records stay, with their results
        assert client.get(f"/tts/progress/{kept['job_id']}").json()["state"] == "succeeded"
