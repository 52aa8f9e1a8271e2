"""Work sharing in process, with the real engine (demo model), a real PostgreSQL and moto's S3: an
instance that stalls past its lease loses the job to another, stops its run at the next step and
writes nothing; the job completes once, by the new owner."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from f5vi.config import Settings
from f5vi.engine.synthesizer import Synthesizer
from f5vi.jobs.requests import TTSInput
from f5vi.jobs.runtime import JobRuntime
from f5vi.jobs.states import JobState
from f5vi.jobs.store import JobStore
from f5vi.storage import StorageConfigError, output_storage
from f5vi.voices.library import VoiceLibrary
from s3_server import ACCESS_KEY, SECRET_KEY, MotoS3
from server_helpers import local_settings, write_voice

LONG_TEXT = " ".join(["Hôm nay trời đẹp, chúng ta cùng nhau đi dạo trong công viên."] * 4)


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    server = MotoS3()
    server.create_bucket("sharing")
    yield server
    server.close()


def settings_for(root: Path, name: str, url: str, s3: MotoS3, **extra: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=url,
        instance_id=name,
        s3_endpoint_url=s3.url,
        s3_bucket="sharing",
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=SECRET_KEY,
        device="cpu",
        normalizer="none",
        cleanup_interval_seconds=0,
        engine_concurrency=1,
        progress_persist_seconds=0.1,
        job_lease_seconds=30.0,
        job_poll_seconds=0.1,
        voices_dir=root / "voices",
    )
    values.update(extra)
    settings = local_settings(root / name, **values)
    settings.ensure_dirs()
    return settings


def runtime(settings: Settings, synth: Synthesizer | None) -> JobRuntime:
    library = VoiceLibrary(settings.voices_dir, None, settings.max_reference_seconds)
    return JobRuntime(settings, library, output_storage(settings), synthesizer=synth)


async def until(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def test_a_stalled_owner_loses_the_job_and_never_completes_it(
    tmp_path: Path, pg_url: str, s3: MotoS3, demo_synth: Synthesizer, caplog: pytest.LogCaptureFixture
) -> None:
    write_voice(tmp_path / "voices", "v1")
    a = runtime(settings_for(tmp_path, "A", pg_url, s3), demo_synth)
    b = runtime(settings_for(tmp_path, "B", pg_url, s3), demo_synth)
    caplog.set_level(logging.INFO)

    async def main() -> None:
        await a.start()
        try:
            job = await a.manager.submit(TTSInput(text=LONG_TEXT, ref_name="v1", nfe_step=8))

            async def running_on_a() -> bool:
                current = await a.manager.get(job.id)
                return current is not None and current.state is JobState.RUNNING and current.progress > 8

            await until(running_on_a)
            await b.start()
            with JobStore(pg_url) as side:  # A "stalls": its lease runs out while it still computes

                async def taken_by_b() -> bool:
                    side._db.execute(
                        "UPDATE jobs SET lease_expires_at = 0 WHERE id = ? AND owner = 'A'", (job.id,)
                    )
                    assert b.manager.sharing is not None
                    b.manager.sharing.wake()
                    await asyncio.sleep(0.05)
                    row = side.get(job.id)
                    return row is not None and row.owner == "B"

                await until(taken_by_b)
            assert a.manager.sharing is not None
            a.manager.sharing._next_renewal = 0.0  # A's next renewal, now: it learns it lost the job
            a.manager.sharing.wake()
            final = await b.manager.wait(job.id, timeout=120)
            await until(lambda: _idle(a))
            assert final.state is JobState.SUCCEEDED and final.owner == "B" and final.attempts == 2, final
            assert a.manager.running_jobs == [] and a.manager._tracker.active(job.id) is None
        finally:
            await b.stop()
            await a.stop()

    asyncio.run(main())
    messages = [r.getMessage() for r in caplog.records]
    assert any("lost its lease" in m for m in messages), messages[-20:]
    assert (
        sum(f"job {m.split()[1]}" == m[: len(m.split()[1]) + 4] and "succeeded:" in m for m in messages) == 1
    )


async def _idle(rt: JobRuntime) -> bool:
    return not rt.scheduler.running


def test_a_shared_store_refuses_local_outputs(tmp_path: Path, pg_url: str) -> None:
    settings = local_settings(tmp_path, database_url=pg_url)
    settings.ensure_dirs()
    with pytest.raises(StorageConfigError, match="F5VI_S3_BUCKET"):
        runtime(settings, None)
