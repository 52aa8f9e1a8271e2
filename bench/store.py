"""Job store benchmark: SQLite vs PostgreSQL (the shared store), one run.

    python -m bench.store [--jobs 400] [--latency-jobs 15]

1. **Store throughput** (no engine): each job's whole life in the store — create, claim, running, three
   progress writes, succeeded — by 1 worker on SQLite (one process owns the file) and by 1 and 2 workers
   (two instances, own connections) on PostgreSQL. Jobs per second.
2. **Submit-to-start latency** through the real JobManager and engine (demo model, NFE 2, one job at a
   time so the engine is idle at each submit): ``started_at - created_at`` of each job. SQLite (local queue);
   PostgreSQL with LISTEN/NOTIFY (two instances: submitted on one whose engine is not loaded, started by
   the other); the same with polling only (NOTIFY off, ``job_poll_seconds`` 1.0).

Starts its own PostgreSQL (Debian's package, as the tests: tests/pg_server.py) and S3 (moto) servers.
Prints a Markdown section for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def _request() -> Any:
    from f5vi.jobs.models import JobRequest

    return JobRequest(
        text="xin chào",
        voice_id="v1",
        ref_name="v1.wav",
        speed=1.0,
        nfe_step=8,
        seed=None,
        format="wav",
        cfg_strength=2.0,
        sway_sampling_coef=-1.0,
        ode_method="euler",
        cross_fade_seconds=0.15,
    )


def store_throughput(target: str, jobs: int, workers: int) -> float:
    """Jobs per second through the store, ``workers`` instances each with their own connection."""
    from f5vi.jobs.states import JobState
    from f5vi.jobs.store import JobStore

    request = _request()
    barrier = threading.Barrier(workers + 1)
    per_worker = jobs // workers

    def work(w: int) -> None:
        with JobStore(target) as store:
            barrier.wait()
            for i in range(per_worker):
                job_id = f"w{w}-{i}"
                store.create(
                    job_id=job_id,
                    kind="tts",
                    request=request,
                    output_filename=f"{job_id}.wav",
                    confirm_token="t",
                )
                claimed = store.claim(f"w{w}", limit=1, lease_seconds=30, max_attempts=2).claimed
                for job in claimed:
                    store.transition(job.id, JobState.RUNNING, owner=f"w{w}")
                    for p in (30.0, 60.0, 90.0):
                        store.update_progress(
                            job.id,
                            progress=p,
                            stage="synthesizing",
                            chunk_index=1,
                            chunk_count=2,
                            eta_seconds=1.0,
                            owner=f"w{w}",
                        )
                    store.transition(job.id, JobState.SUCCEEDED, owner=f"w{w}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    with JobStore(target) as store:
        done = store.counts()[JobState.SUCCEEDED]
    return done / elapsed


async def start_latency(settings_list: list[Any], synth: Any, storage_of: Any, n: int) -> list[float]:
    """Submit ``n`` jobs one after the other on the first runtime; started_at - created_at of each.

    With two runtimes the first has no engine (its model "still loading": it claims nothing), so
    every job is started by the *other* instance: the latency is how soon that one hears of it."""
    from f5vi.jobs.requests import TTSInput
    from f5vi.jobs.runtime import JobRuntime
    from f5vi.voices.library import VoiceLibrary

    runtimes = []
    for i, s in enumerate(settings_list):
        s.ensure_dirs()
        library = VoiceLibrary(s.voices_dir, None, s.max_reference_seconds)
        engine = synth if i == len(settings_list) - 1 else None
        runtimes.append(JobRuntime(s, library, storage_of(s), synthesizer=engine))
    for r in runtimes:
        await r.start()
    latencies: list[float] = []
    try:
        for i in range(n + 1):
            job = await runtimes[0].manager.submit(TTSInput(text=f"Câu {i}.", ref_name="v1", nfe_step=2))
            final = await runtimes[0].manager.wait(job.id, timeout=120)
            assert final.started_at is not None, final
            if i > 0:  # the first one warms the engine up
                latencies.append(final.started_at - final.created_at)
            await asyncio.sleep(0.3)
    finally:
        for r in runtimes:
            await r.stop()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--latency-jobs", type=int, default=15)
    args = parser.parse_args()

    import torch

    from f5vi.config import Settings
    from f5vi.engine.synthesizer import Synthesizer
    from f5vi.storage import output_storage
    from pg_server import PostgresServer, postgres_bin
    from s3_server import ACCESS_KEY, SECRET_KEY, MotoS3
    from server_helpers import demo_model, write_voice

    torch.set_num_threads(1)
    load = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="f5vi-bench-store-"))
    root.chmod(0o755)  # the postgres user (tests/pg_server.py runs it as such under root) must enter it
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed (make sysdeps)")
    pg = PostgresServer(bin_dir, root / "pg", fsync=True).start()
    s3 = MotoS3()
    s3.create_bucket("bench")
    rows: list[str] = []
    try:
        sqlite_tp = store_throughput(str(root / "tp.sqlite3"), args.jobs, 1)
        pg1 = store_throughput(pg.new_database(), args.jobs, 1)
        pg2 = store_throughput(pg.new_database(), args.jobs, 2)
        rows.append(f"| store throughput, 1 worker | {sqlite_tp:.0f} jobs/s | {pg1:.0f} jobs/s | |")
        rows.append(f"| store throughput, 2 instances | (one process only) | {pg2:.0f} jobs/s | |")

        model = demo_model(root)
        synth = Synthesizer.from_settings(
            Settings(model=str(model), vocoder=str(model / "vocos"), device="cpu", normalizer="none")
        )
        voices = root / "voices"
        write_voice(voices, "v1")
        common: dict[str, Any] = dict(
            device="cpu",
            normalizer="none",
            cleanup_interval_seconds=0,
            engine_concurrency=1,
            voices_dir=voices,
        )
        bucket = dict(
            s3_endpoint_url=s3.url,
            s3_bucket="bench",
            s3_access_key_id=ACCESS_KEY,
            s3_secret_access_key=SECRET_KEY,
        )

        def settings(name: str, **extra: Any) -> Any:
            return Settings(data_dir=root / name / "data", output_dir=root / name / "out", **common, **extra)

        sqlite_lat = asyncio.run(
            start_latency([settings("sqlite")], synth, output_storage, args.latency_jobs)
        )
        url = pg.new_database()
        notify = asyncio.run(
            start_latency(
                [settings(n, database_url=url, instance_id=n, **bucket) for n in ("A", "B")],
                synth,
                output_storage,
                args.latency_jobs,
            )
        )
        url = pg.new_database()
        polling = asyncio.run(
            start_latency(
                [
                    settings(
                        n, database_url=url, instance_id=n, job_notify=False, job_poll_seconds=1.0, **bucket
                    )
                    for n in ("pA", "pB")
                ],
                synth,
                output_storage,
                args.latency_jobs,
            )
        )

        def ms(values: list[float]) -> str:
            values = sorted(values)
            p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
            return f"median {statistics.median(values) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"

        rows.append(
            f"| submit-to-start (engine idle) | {ms(sqlite_lat)} | NOTIFY: {ms(notify)}"
            f" | polling 1 s: {ms(polling)} |"
        )
    finally:
        s3.close()
        pg.stop()
    print(f"### Job store: SQLite vs PostgreSQL ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n")
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, no GPU; load average at start "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}; PostgreSQL {bin_dir.parent.name} (Debian, local, "
        f"fsync on, default synchronous_commit), SQLite WAL synchronous=FULL. {args.jobs} jobs per throughput"
        f" run, {args.latency_jobs} jobs per latency run (demo model, NFE 2, one at a time).\n"
    )
    print("| measure | SQLite | PostgreSQL | PostgreSQL (no NOTIFY) |\n|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
