"""Two real server processes on one PostgreSQL job store and one S3 bucket (moto's server).

- submit on one instance; progress, SSE, kill, download and its confirmation on the other;
- kill -9 of the instance running a job: the other takes it over when the lease expires and finishes it;
- 100 jobs over two instances killed (-9) and restarted at random: none lost, none completed twice,
  none stuck.

"The runner" below is the instance whose ``/status`` shows the job running; every cross-instance
check talks to the *other* one, which never ran the job.
"""

from __future__ import annotations

import io
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile as sf

from realtime_helpers import LONG_TEXT, VOICE, sse_events
from s3_server import ACCESS_KEY, SECRET_KEY, MotoS3
from server_helpers import LiveServer, demo_model, poll_until, server_env, wav_bytes, write_voice

pytestmark = pytest.mark.slow

BUCKET = "shared-results"
TERMINAL = ("succeeded", "failed", "cancelled")


class Cluster:
    """Instances named A, B, ... on one database, one bucket and one voices directory."""

    def __init__(self, root: Path, model: Path, database_url: str, s3: MotoS3) -> None:
        self.root = root
        self.model = model
        self.database_url = database_url
        self.s3_url = s3.url
        self.servers: dict[str, LiveServer] = {}
        write_voice(root / "voices", VOICE)

    def start(self, name: str, *, wait: bool = True) -> LiveServer:
        home = self.root / name
        home.mkdir(exist_ok=True)
        env = server_env(
            home,
            self.model,
            database_url=self.database_url,
            s3_endpoint_url=self.s3_url,
            s3_bucket=BUCKET,
            s3_access_key_id=ACCESS_KEY,
            s3_secret_access_key=SECRET_KEY,
            job_lease_seconds=2.0,
            job_poll_seconds=0.25,
            job_max_attempts=6,
            progress_persist_seconds=0.2,
            cleanup_interval_seconds=0,
            nfe_step=4,
            instance_id=name,
        )
        env["F5VI_VOICES_DIR"] = str(self.root / "voices")
        if name in self.servers:
            self.servers[name].close()
        server = LiveServer(home, env)
        self.servers[name] = server
        server.start(ready_timeout=180, wait_ready=wait)
        return server

    def close(self) -> None:
        for server in self.servers.values():
            server.close()


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    server = MotoS3()
    server.create_bucket(BUCKET)
    yield server
    server.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, pg_server: Any, s3: MotoS3) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("shared")
    c = Cluster(root, demo_model(tmp_path_factory.getbasetemp()), pg_server.new_database(), s3)
    try:
        c.start("A", wait=False)
        c.start("B")
        c.servers["A"].wait_ready(180)
        yield c
    finally:
        c.close()


def view(server: LiveServer, job_id: str) -> dict[str, Any]:
    response = server.client.get(f"/tts/progress/{job_id}")
    assert response.status_code == 200, (job_id, response.text)
    return response.json()


def submit(server: LiveServer, text: str, **extra: Any) -> dict[str, Any]:
    response = server.client.post("/tts", json={"text": text, "ref_name": VOICE} | extra)
    assert response.status_code in (200, 202), response.text
    return response.json()


def runner_of(cluster: Cluster, job_id: str) -> tuple[str, str]:
    """(name of the instance running the job, name of the other one), once it runs."""

    def running_on() -> dict[str, Any]:
        return {n: s.client.get("/status").json()["current_job"] for n, s in cluster.servers.items()}

    found, _ = poll_until(running_on, lambda r: job_id in r.values(), timeout=60, interval=0.05)
    runner = next(n for n, j in found.items() if j == job_id)
    other = next(n for n in cluster.servers if n != runner)
    return runner, other


def wait_final(server: LiveServer, job_id: str, timeout: float = 120) -> dict[str, Any]:
    final, seen = poll_until(lambda: view(server, job_id), lambda v: v["state"] in TERMINAL, timeout=timeout)
    values = [v["progress"] for v in seen]
    assert values == sorted(values), values
    return final


def test_submit_on_one_follow_kill_and_download_on_the_other(cluster: Cluster) -> None:
    a = cluster.servers["A"]
    job = submit(a, LONG_TEXT, nfe_step=32)
    job_id = job["job_id"]
    runner, other_name = runner_of(cluster, job_id)
    other = cluster.servers[other_name]

    events: list[dict[str, Any]] = []

    def follow() -> None:
        with other.client.stream("GET", f"/tts/progress/{job_id}/events", timeout=120) as response:
            assert response.status_code == 200
            events.extend(sse_events(response.iter_lines()))

    sse = threading.Thread(target=follow)
    sse.start()
    # progress of a job running elsewhere moves on this instance too
    _, seen = poll_until(
        lambda: view(other, job_id),
        lambda v: v["state"] == "running" and v["progress"] > 10,
        timeout=90,
        interval=0.05,
    )
    assert len({v["progress"] for v in seen if v["state"] == "running"}) >= 2, seen
    killed = other.client.post(f"/tts/kill/{job_id}")
    assert killed.status_code == 200, killed.text
    assert killed.json()["job"]["state"] == "cancelled"
    sse.join(timeout=60)
    assert not sse.is_alive()
    states = [e["data"]["state"] for e in events]
    assert "running" in states and states[-1] == "cancelled" and events[-1]["event"] == "done", states
    progress = [e["data"]["progress"] for e in events]
    assert progress == sorted(progress) and len(set(progress)) >= 3, progress
    final = view(cluster.servers[runner], job_id)
    assert final["state"] == "cancelled" and final["progress"] < 95  # stopped mid-run, on the runner
    assert cluster.servers[runner].client.get("/status").json()["current_job"] is None

    # the same job id submitted again on the other instance is the same job; a different body conflicts
    short = submit(a, "Xin chào các bạn.", job_id="shared-idem")
    again = other.client.post(
        "/tts", json={"text": "Xin chào các bạn.", "ref_name": VOICE, "job_id": "shared-idem"}
    )
    assert again.status_code == 202 and again.json()["job_id"] == short["job_id"]
    assert again.json()["message"].startswith("Job already exists")
    clash = other.client.post("/tts", json={"text": "Khác.", "ref_name": VOICE, "job_id": "shared-idem"})
    assert clash.status_code == 409, clash.text

    # download and its confirmation through both instances: the file is in the bucket
    done = wait_final(other, "shared-idem")
    assert done["state"] == "succeeded", done
    for server in (a, other):
        response = server.client.get(f"/output/{done['filename']}", follow_redirects=False)
        assert response.status_code == 307, response.text
        assert response.headers["location"].startswith(f"{cluster.s3_url}/{BUCKET}/")
        audio, rate = sf.read(io.BytesIO(httpx.get(response.headers["location"], timeout=10).content))
        assert rate == 24_000 and len(audio) > 0
    assert other.client.post(done["result"]["confirmation_url"]).status_code == 200
    assert a.client.get("/check-download/shared-idem").json()["confirmed"] is True


def test_a_voice_uploaded_on_one_instance_is_used_and_deleted_on_the_other(cluster: Cluster) -> None:
    a, b = cluster.servers["A"], cluster.servers["B"]
    files = {"file": ("mine.wav", wav_bytes(3.0), "audio/wav")}
    uploaded = a.client.post(
        "/voices", files=files, data={"voice_id": "shared_spk", "transcript": "xin chào."}
    )
    assert uploaded.status_code in (200, 201), uploaded.text
    assert "shared_spk" in [v["id"] for v in b.client.get("/voices").json()["voices"]]
    job = submit(b, "Giọng của tôi.", ref_name="shared_spk", nfe_step=2)
    assert wait_final(a, job["job_id"])["state"] == "succeeded"  # whichever instance ran it had the voice
    assert b.client.delete("/voices/shared_spk").status_code == 200
    assert a.client.get("/voices/shared_spk").status_code == 404


def test_kill_9_of_the_runner_and_the_other_instance_finishes_the_job(cluster: Cluster) -> None:
    job = submit(cluster.servers["A"], LONG_TEXT, nfe_step=8)
    job_id = job["job_id"]
    runner, other_name = runner_of(cluster, job_id)
    other = cluster.servers[other_name]
    poll_until(lambda: view(other, job_id), lambda v: v["progress"] > 8, timeout=60, interval=0.05)
    before = view(other, job_id)["progress"]
    cluster.servers[runner].kill9()
    final = wait_final(other, job_id, timeout=180)
    assert final["state"] == "succeeded" and final["attempts"] == 2, final
    assert final["progress"] == 100 and before < 100
    response = other.client.get(f"/output/{final['filename']}", follow_redirects=True)
    assert response.status_code == 200 and sf.read(io.BytesIO(response.content))[1] == 24_000
    assert other.client.get("/status").json()["current_job"] is None
    cluster.start(runner)  # for the next test


def test_100_jobs_over_two_instances_killed_at_random(cluster: Cluster) -> None:
    """Submissions alternate between the instances; four times one of them is killed (-9) while
    jobs run and started again. Every job ends succeeded, each succeeded exactly once."""
    rng = random.Random(24)
    names = sorted(cluster.servers)
    ids: list[str] = []
    for i in range(100):
        server = cluster.servers[names[i % 2]]
        ids.append(submit(server, f"Câu số {i}.", nfe_step=2, job_id=f"many-{i:03d}")["job_id"])
    for victim in rng.sample(names * 2, 4):  # each instance dies twice, in a random order
        time.sleep(rng.uniform(0.5, 2.0))
        cluster.servers[victim].kill9()
        cluster.start(victim)
    watcher = cluster.servers[names[0]]

    def states() -> dict[str, int]:
        return Counter(view(watcher, job_id)["state"] for job_id in ids)

    final, _ = poll_until(
        states, lambda c: c["succeeded"] + c["failed"] + c["cancelled"] == 100, timeout=300, interval=1.0
    )
    assert final == {"succeeded": 100}, final  # none lost, none stuck (and none failed)
    # never completed twice: one "succeeded" log line per job over every life of both instances
    logs = "".join((cluster.root / n / "server.log").read_text(errors="replace") for n in names)
    finished = Counter(re.findall(r"job (many-\d{3}) succeeded", logs))
    assert max(finished.values()) == 1, [k for k, v in finished.items() if v > 1]
    attempts = [view(watcher, job_id)["attempts"] for job_id in ids]
    assert min(attempts) >= 1 and max(attempts) >= 2, attempts  # some were taken over from a killed one
