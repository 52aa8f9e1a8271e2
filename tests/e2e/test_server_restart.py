"""Crash safety with a real server: kill -9 in the middle of a job, restart, nothing is lost.

Life 1: a short job succeeds (downloaded, confirmed); a long job runs; two more wait. kill -9.
Life 2: the finished output is intact; the interrupted job runs again (attempt 2) and succeeds;
        the waiting jobs follow in order. A new long job starts. kill -9.
Life 3: that job runs again (attempt 2). kill -9 again.
Life 4: it has failed with its reason ("interrupted"); everything else is as it was.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import soundfile as sf

from server_helpers import LiveServer, demo_model, poll_until, server_env, write_voice

MID_TEXT = "Hôm nay trời đẹp, chúng ta cùng nhau đi dạo trong công viên. Chiều nay trời có thể mưa."
TERMINAL = ("succeeded", "failed", "cancelled")


def view(server: LiveServer, job_id: str) -> dict[str, Any]:
    response = server.client.get(f"/tts/progress/{job_id}")
    assert response.status_code == 200, (job_id, response.text)
    return response.json()


def submit(server: LiveServer, job_id: str, text: str, nfe_step: int) -> dict[str, Any]:
    response = server.client.post(
        "/tts", json={"text": text, "ref_name": "v1", "job_id": job_id, "nfe_step": nfe_step}
    )
    assert response.status_code == 202, response.text
    return response.json()


def wait_running(server: LiveServer, job_id: str, above: float = 6.0) -> list[float]:
    _, seen = poll_until(
        lambda: view(server, job_id),
        lambda v: v["state"] == "running" and v["progress"] > above,
        timeout=60,
        interval=0.03,
    )
    return [v["progress"] for v in seen]


def wait_final(server: LiveServer, job_id: str) -> dict[str, Any]:
    final, seen = poll_until(lambda: view(server, job_id), lambda v: v["state"] in TERMINAL, timeout=90)
    values = [v["progress"] for v in seen]
    assert values == sorted(values), values
    return final


def download(server: LiveServer, filename: str) -> bytes:
    response = server.client.get(f"/output/{filename}")
    assert response.status_code == 200, response.text
    audio, sr = sf.read(io.BytesIO(response.content))
    assert sr == 24_000 and len(audio) > 0
    return response.content


def test_kill_9_mid_job_loses_nothing(tmp_path: Path, tmp_path_factory: Any) -> None:
    write_voice(tmp_path / "voices", "v1")
    env = server_env(tmp_path, demo_model(tmp_path_factory.getbasetemp()), progress_persist_seconds=0.2)

    # ---------------------------------------------------------------- life 1
    with LiveServer(tmp_path, env) as life1:
        life1.start()
        short = submit(life1, "short", "Xin chào.", 8)
        done = wait_final(life1, "short")
        assert done["state"] == "succeeded"
        short_sha = hashlib.sha256(download(life1, short["filename"])).hexdigest()
        assert life1.client.post(done["result"]["confirmation_url"]).status_code == 200

        submit(life1, "long-1", MID_TEXT, 32)
        submit(life1, "q-1", "Câu chờ thứ nhất.", 8)
        submit(life1, "q-2", "Câu chờ thứ hai.", 8)
        seen_before_kill = wait_running(life1, "long-1")
        life1.kill9()

    # ---------------------------------------------------------------- life 2
    with LiveServer(tmp_path, env) as life2:
        life2.start()
        first = view(life2, "long-1")
        assert first["state"] in ("queued", "running")
        assert first["progress"] >= seen_before_kill[-1]  # what a client saw survived the crash
        for job_id in ("q-1", "q-2"):
            assert view(life2, job_id)["state"] in ("queued", "running")
        again = view(life2, "short")
        assert again["state"] == "succeeded" and again["result"]["output_available"]
        assert hashlib.sha256(download(life2, again["filename"])).hexdigest() == short_sha
        assert life2.client.get("/check-download/short").json()["confirmed"] is True

        long1 = wait_final(life2, "long-1")
        assert long1["state"] == "succeeded" and long1["attempts"] == 2, long1
        long1_audio = download(life2, long1["filename"])
        q1, q2 = wait_final(life2, "q-1"), wait_final(life2, "q-2")
        assert q1["state"] == q2["state"] == "succeeded"
        assert long1["finished_at"] <= q1["started_at"] <= q2["started_at"]  # order kept

        submit(life2, "long-2", MID_TEXT, 32)
        wait_running(life2, "long-2")
        life2.kill9()

    # ---------------------------------------------------------------- life 3
    with LiveServer(tmp_path, env) as life3:
        life3.start()
        wait_running(life3, "long-2")
        assert view(life3, "long-2")["attempts"] == 2
        life3.kill9()

    # ---------------------------------------------------------------- life 4
    with LiveServer(tmp_path, env) as life4:
        life4.start()
        failed = view(life4, "long-2")
        assert failed["state"] == "failed" and failed["status"] == "failed"
        assert failed["error"]["code"] == "interrupted"
        assert "2 times" in failed["error"]["message"]
        assert life4.client.get(f"/output/{failed['filename']}").status_code == 404
        assert hashlib.sha256(download(life4, short["filename"])).hexdigest() == short_sha
        assert download(life4, long1["filename"]) == long1_audio
        for job_id in ("q-1", "q-2"):
            assert view(life4, job_id)["state"] == "succeeded"
        status = life4.client.get("/status").json()
        assert status["jobs"] == {"queued": 0, "running": 0, "succeeded": 4, "failed": 1, "cancelled": 0}
        # and it still works
        submit(life4, "after", "Mọi thứ vẫn ổn.", 8)
        assert wait_final(life4, "after")["state"] == "succeeded"
        assert not list((tmp_path / "output").glob(".partial-*"))
