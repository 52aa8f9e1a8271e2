"""With F5VI_API_KEY set, the download and confirmation URLs of a job work on their own (they carry
the job's secret token), as a webhook receiver that only has the URLs needs; anything else still
needs the key, and a wrong token is refused."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from f5vi.api.app import create_app
from f5vi.engine.synthesizer import Synthesizer
from server_helpers import assert_error_shape, local_settings, poll_until, write_voice

KEY = "s3cret-key"


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def test_urls_carry_their_own_authorisation(tmp_path: Path, demo_synth: Synthesizer) -> None:
    settings = local_settings(
        tmp_path,
        device="cpu",
        normalizer="none",
        api_key=KEY,
    )
    write_voice(settings.voices_dir, "v1")
    auth = {"Authorization": f"Bearer {KEY}"}
    with TestClient(create_app(settings, synthesizer=demo_synth)) as client:
        submitted = client.post(
            "/tts", json={"text": "Xin chào.", "ref_name": "v1", "nfe_step": 4}, headers=auth
        )
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["job_id"]
        final, _ = poll_until(
            lambda: client.get(f"/tts/progress/{job_id}", headers=auth).json(),
            lambda v: v["state"] in ("succeeded", "failed"),
            timeout=60,
            interval=0.05,
        )
        assert final["state"] == "succeeded", final
        download = _path(final["result"]["download_url"])
        assert "token=" in download

        # no key: the URL's own token is enough
        response = client.get(download)
        assert response.status_code == 200
        assert response.content[:4] == b"RIFF"
        # the bare file name without key or token is refused, and a wrong token too
        filename = final["filename"]
        assert_error_shape(client.get(f"/output/{filename}"), 401, "unauthorized")
        assert_error_shape(client.get(f"/output/{filename}?token=wrong"), 403, "invalid_token")
        # a token only opens the download and confirmation routes, nothing else
        assert_error_shape(client.get(f"/tts/progress/{job_id}?token=anything"), 401, "unauthorized")
        assert_error_shape(client.post(f"/confirm-download/{job_id}?token=wrong"), 403)
        confirmed = client.post(_path(final["result"]["confirmation_url"]))
        assert confirmed.status_code == 200, confirmed.text
        assert client.get(f"/check-download/{job_id}", headers=auth).json()["confirmed"] is True
