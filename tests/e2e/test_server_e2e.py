"""End to end over a real uvicorn process on 127.0.0.1 with the real engine (demo model, CPU):
submit -> poll -> download a valid wav -> confirm -> check; kill queued and running jobs; two jobs
run one at a time in order; the API answers while a job runs; /docs lists every route."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from f5vi.api.served_schema import describe_keyless
from server_helpers import LiveServer, demo_model, poll_until, server_env, write_voice

REPO_ROOT = Path(__file__).resolve().parents[2]
LONG_TEXT = " ".join(["Hôm nay trời đẹp, chúng ta cùng nhau đi dạo trong công viên."] * 12)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("e2e")
    write_voice(root / "voices", "v1")
    model = demo_model(tmp_path_factory.getbasetemp())
    with LiveServer(root, server_env(root, model, progress_persist_seconds=0.2)) as live:
        live.start()
        yield live


def progress(server: LiveServer, job_id: str) -> dict[str, Any]:
    response = server.client.get(f"/tts/progress/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def submit(server: LiveServer, **payload: Any) -> dict[str, Any]:
    payload.setdefault("ref_name", "v1")
    response = server.client.post("/tts", json=payload)
    assert response.status_code == 202, response.text
    return response.json()


def finished(view: dict[str, Any]) -> bool:
    return view["state"] in ("succeeded", "failed", "cancelled")


def test_health_says_which_model_and_that_it_is_a_demo(server: LiveServer) -> None:
    health = server.client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "healthy" and body["ready"] is True and body["is_demo"] is True
    assert body["model"]["is_demo"] is True and body["model"]["model"] == "demo_model"  # no server path
    assert "DEMO MODEL LOADED" in server.log_tail(400)
    status = server.client.get("/status").json()
    assert status["model_loaded"] and status["engine_status"] == "ready" and status["device"] == "cpu"


def test_submit_poll_download_confirm_check(server: LiveServer) -> None:
    accepted = submit(server, text="Xin chào các bạn, hôm nay trời đẹp.", speed=1.0, seed=42, nfe_step=16)
    assert accepted["state"] in ("queued", "running") and accepted["sample_used"] == "v1"
    assert accepted["filename"].startswith(accepted["job_id"] + "_") and accepted["filename"].endswith(".wav")

    final, seen = poll_until(
        lambda: progress(server, accepted["job_id"]), finished, timeout=90, interval=0.05
    )
    assert final["state"] == "succeeded", final
    # seed pollers: progress == 100 and status == "completed"
    assert final["progress"] == 100 and final["status"] == "completed"
    values = [v["progress"] for v in seen]
    assert values == sorted(values), values  # never decreases
    result = final["result"]
    assert result["seed"] == 42 and result["format"] == "wav" and result["sample_used"] == "v1"
    assert result["output_available"] is True and result["expires_at"] > time.time()

    download = server.client.get(result["wav_url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "audio/wav"
    assert download.headers["accept-ranges"] == "bytes"
    audio, sr = sf.read(io.BytesIO(download.content))
    info = sf.info(io.BytesIO(download.content))
    assert sr == 24_000 and info.channels == 1 and info.subtype == "PCM_16"
    assert abs(len(audio) / sr - result["duration_seconds"]) < 0.01 and len(audio) > 1000
    assert len(download.content) == result["size_bytes"]

    part = server.client.get(result["wav_url"], headers={"Range": "bytes=0-43"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 0-43/{len(download.content)}"
    assert part.content == download.content[:44]
    tail = server.client.get(result["wav_url"], headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == download.content[-100:]
    bad = server.client.get(result["wav_url"], headers={"Range": f"bytes={10**9}-"})
    assert bad.status_code == 416 and bad.json()["error"]["code"] == "range_not_satisfiable"

    job_id = accepted["job_id"]
    check = server.client.get(f"/check-download/{job_id}").json()
    assert check["confirmed"] is False and check["timestamp"] is None
    # seed clients POST the confirmation_url with a JSON body, which is ignored
    confirm = server.client.post(
        result["confirmation_url"], json={"job_id": job_id, "status": "downloaded", "timestamp": 1}
    )
    assert confirm.status_code == 200, confirm.text
    body = confirm.json()
    assert body["status"] == "confirmed" and body["confirmed"] is True and body["job_id"] == job_id
    check = server.client.get(f"/check-download/{job_id}").json()
    assert check["confirmed"] is True and check["timestamp"] == body["timestamp"]
    again = server.client.post(result["confirmation_url"]).json()
    assert again["timestamp"] == body["timestamp"]
    # still downloadable until the confirmed-output retention passes
    assert server.client.get(result["wav_url"]).status_code == 200


def test_kill_a_queued_and_a_running_job(server: LiveServer) -> None:
    running = submit(server, text=LONG_TEXT, nfe_step=64)
    queued = submit(server, text="Câu này không bao giờ chạy.", nfe_step=8)
    poll_until(
        lambda: progress(server, running["job_id"]),
        lambda v: v["state"] == "running" and v["progress"] > 8,
        timeout=60,
        interval=0.05,
    )
    assert progress(server, queued["job_id"])["queue_position"] == 0

    killed = server.client.post(f"/tts/kill/{queued['job_id']}")
    assert killed.status_code == 200 and killed.json()["status"] == "cancelled"
    assert progress(server, queued["job_id"])["state"] == "cancelled"

    before = progress(server, running["job_id"])
    killed = server.client.post(f"/tts/kill/{running['job_id']}")
    # 200 "cancelled": the engine stopped it while the kill waited (202 "cancelling" otherwise); that
    # it stops within one ODE step is counted in tests/jobs/test_jobs_manager_engine.py.
    assert killed.status_code == 200, killed.text
    assert killed.json()["status"] == "cancelled"
    view = progress(server, running["job_id"])
    assert view["state"] == "cancelled" and view["status"] == "cancelled"
    assert view["error"]["code"] == "cancelled" and view["progress"] >= before["progress"]
    assert server.client.get(f"/output/{running['filename']}").status_code == 404
    assert server.client.post(f"/tts/kill/{running['job_id']}").status_code == 409
    assert progress(server, queued["job_id"])["started_at"] is None  # never ran

    after = submit(server, text="Sau khi huỷ.", nfe_step=8)
    final, _ = poll_until(lambda: progress(server, after["job_id"]), finished, timeout=60)
    assert final["state"] == "succeeded"


def test_two_jobs_run_one_at_a_time_in_order(server: LiveServer) -> None:
    first = submit(server, text="Câu thứ nhất, dài hơn một chút để chạy lâu.", nfe_step=32)
    second = submit(server, text="Câu thứ hai.", nfe_step=16)
    samples: list[tuple[str, str]] = []
    statuses: list[dict[str, Any]] = []

    def both() -> dict[str, Any]:
        a, b = progress(server, first["job_id"]), progress(server, second["job_id"])
        samples.append((a["state"], b["state"]))
        statuses.append(server.client.get("/status").json())
        return {"a": a, "b": b}

    final, _ = poll_until(both, lambda v: finished(v["a"]) and finished(v["b"]), timeout=90, interval=0.05)
    a, b = final["a"], final["b"]
    assert a["state"] == b["state"] == "succeeded"
    assert ("running", "running") not in samples
    assert ("queued", "running") not in samples and ("pending", "running") not in samples
    assert any(s == ("running", "queued") for s in samples)  # the second one waited its turn
    assert b["started_at"] >= a["finished_at"]
    busy = [s for s in statuses if s["current_job"] == first["job_id"]]
    assert busy and all(s["busy"] for s in busy) and any(s["queue_depth"] >= 1 for s in busy)


def test_the_api_answers_while_a_job_runs(server: LiveServer) -> None:
    job = submit(server, text=LONG_TEXT, nfe_step=32)
    poll_until(lambda: progress(server, job["job_id"]), lambda v: v["state"] == "running", timeout=60)
    for _ in range(10):  # answered while the job runs (how fast: bench/, not here)
        assert server.client.get("/health").status_code == 200
        assert server.client.get("/voices").status_code == 200
    view = progress(server, job["job_id"])
    assert view["state"] == "running", view  # the job really was running meanwhile
    assert view["eta_seconds"] is None or view["eta_seconds"] >= 0
    server.client.post(f"/tts/kill/{job['job_id']}")


def test_docs_load_and_list_every_route(server: LiveServer) -> None:
    docs = server.client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text and "/openapi.json" in docs.text
    served = server.client.get("/openapi.json").json()
    committed = json.loads((REPO_ROOT / "openapi.json").read_text(encoding="utf-8"))
    assert served == describe_keyless(committed)  # this server has no key (the committed file: keyed)
    assert set(served["paths"]) == {
        "/health",
        "/status",
        "/voices",
        "/voices/{voice_id}",
        "/tts",
        "/tts/progress/{job_id}",
        "/tts/kill/{job_id}",
        "/normalize",
        "/output/{filename}",
        "/confirm-download/{job_id}",
        "/check-download/{job_id}",
        "/cleanup",
        "/tts/progress/{job_id}/events",
        "/v1/audio/speech",
        "/metrics",
        "/v1/models",
        "/v1/models/{model}",
        "/v1/audio/voices",
        "/lexicon",
        "/tts/{job_id}/subtitles",
    }


def test_cleanup_frees_engine_memory(server: LiveServer) -> None:
    response = server.client.post("/cleanup")
    assert response.status_code in (200, 202)
    body = response.json()
    assert body["status"] in ("cleaned", "scheduled") and body["outputs_removed"] >= 0
    if body["status"] == "cleaned":
        assert body["memory"]["cached_references"] == 0


def test_server_stops_cleanly_on_sigterm(server: LiveServer) -> None:
    # last test of the module: SIGTERM -> lifespan shutdown -> uvicorn exits (rc 143 re-raised)
    rc = server.stop(timeout=30)
    assert rc in (0, 143, -15), (rc, server.log_tail())
    assert "Traceback" not in server.log_tail(400), server.log_tail(400)
