"""A non-streamed ``POST /v1/audio/speech`` client that gives up frees its queue place at once
(issue 25, item 3: it used to keep it until its turn came, 62 s in the probe). Live server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from realtime_helpers import LONG_TEXT, VOICE, auth_headers, start_server, wait_job
from server_helpers import poll_until


def test_a_speech_client_that_leaves_gives_its_queue_place_up(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = start_server(tmp_path, tmp_path_factory.getbasetemp(), engine_concurrency=1, nfe_step=16)
    try:
        client = server.client
        job = client.post("/tts", json={"text": " ".join([LONG_TEXT] * 2), "ref_name": VOICE}).json()[
            "job_id"
        ]
        poll_until(lambda: client.get(f"/tts/progress/{job}").json(), lambda p: p["state"] == "running")
        body = {"input": "Xin chào các bạn.", "voice": VOICE, "response_format": "wav"}
        with pytest.raises(httpx.TimeoutException):  # queued behind the job; the client gives up
            httpx.post(f"{server.base_url}/v1/audio/speech", json=body, headers=auth_headers(), timeout=1.5)
        status, _ = poll_until(
            lambda: client.get("/status").json(), lambda s: s["queue_depth"] == 0, timeout=15
        )
        assert status["queue_depth"] == 0
        assert client.get(f"/tts/progress/{job}").json()["state"] == "running"  # freed long before its turn
        client.post(f"/tts/kill/{job}")
        assert wait_job(client, job, timeout=120)["state"] == "cancelled"
    finally:
        server.close()
