"""``GET /tts/progress/{job_id}/events`` (Server-Sent Events) against a live server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from realtime_helpers import LONG_TEXT, SHORT_TEXT, VOICE, sse_events, start_server, wait_job
from server_helpers import LiveServer, assert_error_shape

ORDER = {"queued": 0, "running": 1, "succeeded": 2, "failed": 2, "cancelled": 2}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = start_server(
        tmp_path_factory.mktemp("sse"), tmp_path_factory.getbasetemp(), progress_persist_seconds=0.2
    )
    yield srv
    srv.close()


def _events(server: LiveServer, job_id: str, timeout: float = 120.0) -> list[dict[str, Any]]:
    with server.client.stream("GET", f"/tts/progress/{job_id}/events", timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        return list(sse_events(response.iter_lines()))


def _check_sequence(events: list[dict[str, Any]], job_id: str) -> None:
    assert events, "no events"
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
    jobs = [e["data"] for e in events]
    assert all(j["job_id"] == job_id for j in jobs)
    progress = [j["progress"] for j in jobs]
    assert progress == sorted(progress), progress  # monotonic
    ranks = [ORDER[j["state"]] for j in jobs]
    assert ranks == sorted(ranks), [j["state"] for j in jobs]
    assert [e["event"] for e in events[:-1]] == ["progress"] * (len(events) - 1)
    assert events[-1]["event"] == "done"
    assert ORDER[jobs[-1]["state"]] == 2  # the stream ends on a final state


def test_events_are_monotonic_and_end_with_the_final_state(server: LiveServer) -> None:
    # A job ahead keeps the one we watch queued for a moment, so every state shows up.
    ahead = server.client.post("/tts", json={"text": SHORT_TEXT, "ref_name": VOICE}).json()
    job = server.client.post("/tts", json={"text": LONG_TEXT, "ref_name": VOICE, "format": "mp3"}).json()
    events = _events(server, job["job_id"])
    _check_sequence(events, job["job_id"])
    states = [e["data"]["state"] for e in events]
    assert states[0] == "queued" and "running" in states and states[-1] == "succeeded", states
    running = [e["data"] for e in events if e["data"]["state"] == "running"]
    assert len({r["progress"] for r in running}) >= 3, "progress should move while it runs"
    final = events[-1]["data"]
    assert final["progress"] == 100 and final["result"]["format"] == "mp3"
    polled = server.client.get(f"/tts/progress/{job['job_id']}").json()
    for key in ("state", "filename", "result"):
        assert final[key] == polled[key], key
    assert wait_job(server.client, ahead["job_id"])["state"] == "succeeded"


def test_a_finished_job_gives_one_done_event(server: LiveServer) -> None:
    job = server.client.post("/tts", json={"text": SHORT_TEXT, "ref_name": VOICE}).json()
    assert wait_job(server.client, job["job_id"])["state"] == "succeeded"
    events = _events(server, job["job_id"])
    assert [e["event"] for e in events] == ["done"]
    assert events[0]["data"]["state"] == "succeeded"


def test_a_cancelled_job_ends_the_stream_with_cancelled(server: LiveServer) -> None:
    job = server.client.post("/tts", json={"text": LONG_TEXT + " " + LONG_TEXT, "ref_name": VOICE}).json()
    collected: list[dict[str, Any]] = []

    def watch() -> None:
        collected.extend(_events(server, job["job_id"]))

    watcher = threading.Thread(target=watch)
    watcher.start()
    # Cancel once it runs.
    for _ in range(600):
        if server.client.get(f"/tts/progress/{job['job_id']}").json()["state"] == "running":
            break
        threading.Event().wait(0.05)
    assert server.client.post(f"/tts/kill/{job['job_id']}").status_code in (200, 202)
    watcher.join(timeout=60)
    assert not watcher.is_alive()
    _check_sequence(collected, job["job_id"])
    assert collected[-1]["data"]["state"] == "cancelled"


def test_unknown_job_and_missing_key(server: LiveServer) -> None:
    assert_error_shape(server.client.get("/tts/progress/job_nope/events"), 404, "job_not_found")
    no_key = httpx.get(f"{server.base_url}/tts/progress/job_nope/events", timeout=30)
    assert_error_shape(no_key, 401, "unauthorized")
