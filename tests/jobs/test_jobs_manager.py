"""JobManager without an engine (still loading): submission, idempotency, queue cap, cancel of
queued jobs, download confirmation rules, restart with queued jobs, retention.

Running jobs with the real engine are covered in ``test_jobs_manager_engine.py``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from f5vi.config import Settings
from f5vi.engine.errors import InvalidParameterError, InvalidTextError
from f5vi.jobs.errors import (
    InvalidConfirmationTokenError,
    InvalidJobIdError,
    JobConflictError,
    JobFinishedError,
    JobNotSucceededError,
    QueueFullError,
    ServiceUnavailableError,
    UnknownJobError,
)
from f5vi.jobs.manager import JobManager
from f5vi.jobs.models import Job, JobResult
from f5vi.jobs.requests import TTSInput, complete_request
from f5vi.jobs.runtime import JobRuntime
from f5vi.jobs.states import JobState
from f5vi.storage import LocalOutputStorage, make_output_filename
from f5vi.voices.errors import InvalidVoiceNameError, VoiceNotFoundError
from f5vi.voices.library import VoiceLibrary
from server_helpers import local_settings, write_voice


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        queue_max=3,
        cleanup_interval_seconds=0,
    )
    values.update(overrides)
    return local_settings(tmp_path, **values)


def make_runtime(settings: Settings, clock: Callable[[], float] | None = None) -> JobRuntime:
    """The job system with no engine attached (still loading): jobs are accepted and stay queued."""
    settings.ensure_dirs()
    library = VoiceLibrary(settings.voices_dir, None, settings.max_reference_seconds)
    kwargs: dict[str, Any] = {"clock": clock} if clock else {}
    return JobRuntime(settings, library, LocalOutputStorage(settings.output_dir), **kwargs)


def run(tmp_path: Path, scenario: Callable[[JobManager], Awaitable[None]], **overrides: Any) -> None:
    settings = make_settings(tmp_path, **overrides)
    write_voice(settings.voices_dir, "v1")

    async def main() -> None:
        async with make_runtime(settings) as runtime:
            await scenario(runtime.manager)

    asyncio.run(main())


def tts(text: str = "xin chào", **kw: Any) -> TTSInput:
    return TTSInput(text=text, ref_name=kw.pop("ref_name", "v1"), **kw)


def test_submit_persists_a_queued_job(tmp_path: Path) -> None:
    async def scenario(m: JobManager) -> None:
        job = await m.submit(tts(speed=1.1, seed=5, format="flac"))
        assert job.state is JobState.QUEUED
        assert job.id.startswith("job_") and len(job.id) > 20
        assert job.output_filename.startswith(job.id + "_") and job.output_filename.endswith(".flac")
        assert job.request.voice_id == "v1" and job.request.speed == 1.1 and job.request.seed == 5
        assert job.request.nfe_step == m.settings.nfe_step
        assert await m.get(job.id) == job
        assert m.store.get(job.id) is not None  # on disk, not only in memory
        assert m.queue_position(job.id) == 0
        assert await m.get("unknown") is None and await m.get("../etc") is None

    run(tmp_path, scenario)


def test_ref_name_forms_resolve_to_the_same_voice(tmp_path: Path) -> None:
    async def scenario(m: JobManager) -> None:
        for name in ("v1", "v1.wav", "sample/v1.wav", "voice:v1"):
            job = await m.submit(tts(ref_name=name))
            assert job.request.voice_id == "v1"

    run(tmp_path, scenario, queue_max=10)


def test_client_job_id_is_validated_and_idempotent(tmp_path: Path) -> None:
    async def scenario(m: JobManager) -> None:
        first, created = await m.submit_or_get(tts(), job_id="client-1")
        assert created and first.id == "client-1"
        again, created = await m.submit_or_get(tts(ref_name="v1.wav"), job_id="client-1")
        assert not created and again.id == "client-1"
        assert len(m.scheduler.queue) == 1
        with pytest.raises(JobConflictError):
            await m.submit(tts("another text"), job_id="client-1")
        for bad in ("../x", "a/b", "", "x" * 129, "-start", "tiếng", "a b", "a.b"):
            with pytest.raises(InvalidJobIdError):
                await m.submit(tts(), job_id=bad)
        # RunPod: the platform's id is the idempotency key
        k1 = await m.submit(tts("one"), idempotency_key="rp-abc")
        k2 = await m.submit(tts("one"), idempotency_key="rp-abc")
        assert k1.id == k2.id
        with pytest.raises(JobConflictError):
            await m.submit(tts("two"), idempotency_key="rp-abc")

    run(tmp_path, scenario)


def test_bad_requests_are_refused_before_queueing(tmp_path: Path) -> None:
    async def scenario(m: JobManager) -> None:
        with pytest.raises(VoiceNotFoundError):
            await m.submit(tts(ref_name="nobody"))
        for name in ("../v1", "../../etc/passwd", "/etc/passwd", "sample/../v1", "v1/../../x", "%2e%2e/v1"):
            with pytest.raises(InvalidVoiceNameError):
                await m.submit(tts(ref_name=name))
        with pytest.raises(InvalidTextError):
            await m.submit(tts("   \n "))
        with pytest.raises(InvalidTextError):
            await m.submit(tts("a" * (m.settings.max_text_chars + 1)))
        with pytest.raises(InvalidParameterError):
            await m.submit(tts(format="exe"))
        assert len(m.scheduler.queue) == 0 and sum(m.store.counts().values()) == 0

    run(tmp_path, scenario)


def test_queue_cap(tmp_path: Path) -> None:
    async def scenario(m: JobManager) -> None:
        submitted = [await m.submit(tts(f"job {i}")) for i in range(3)]
        with pytest.raises(QueueFullError) as full:
            await m.submit(tts("one too many"))
        assert full.value.retry_after_seconds >= 1
        assert sum(m.store.counts().values()) == 3
        # a replay of an existing id is not a new job: allowed even when full
        first = submitted[0]
        with pytest.raises(QueueFullError):
            await m.submit(tts("job 0"), job_id="fresh-id")
        again, created = await m.submit_or_get(tts("job 0"), job_id=first.id)
        assert not created and again.id == first.id

    run(tmp_path, scenario)


def test_cancel_queued_job(tmp_path: Path) -> None:
    async def scenario(m: JobManager) -> None:
        a = await m.submit(tts("a"))
        b = await m.submit(tts("b"))
        with m.subscribe(b.id) as updates:
            cancelled = await m.cancel(b.id)
            assert cancelled.state is JobState.CANCELLED
            assert cancelled.error_code == "cancelled"
            event = await updates.get(timeout=2)
            assert event.id == b.id and event.state is JobState.CANCELLED
        assert m.scheduler.queue.keys() == [a.id]
        assert m.store.get(b.id).state is JobState.CANCELLED  # type: ignore[union-attr]
        assert (await m.wait(b.id, timeout=1)).state is JobState.CANCELLED
        with pytest.raises(JobFinishedError):
            await m.cancel(b.id)
        with pytest.raises(UnknownJobError):
            await m.cancel("no-such-job")

    run(tmp_path, scenario)


def test_confirmation_rules(tmp_path: Path) -> None:
    async def scenario(m: JobManager) -> None:
        job = await m.submit(tts())
        with pytest.raises(InvalidConfirmationTokenError):
            await m.confirm_download(job.id, "wrong")
        with pytest.raises(InvalidConfirmationTokenError):
            await m.confirm_download(job.id, None)
        with pytest.raises(JobNotSucceededError):
            await m.confirm_download(job.id, job.confirm_token)
        with pytest.raises(UnknownJobError):
            await m.confirm_download("nope", "x")
        checked = await m.check_download(job.id)
        assert checked.confirmed_at is None

    run(tmp_path, scenario)


def test_engine_failure_refuses_new_jobs_but_keeps_queued_ones(tmp_path: Path) -> None:
    async def scenario(m: JobManager) -> None:
        job = await m.submit(tts())
        m.scheduler.failed("no model")
        with pytest.raises(ServiceUnavailableError):
            await m.submit(tts("later"))
        assert (await m.get(job.id)).state is JobState.QUEUED  # type: ignore[union-attr]

    run(tmp_path, scenario)


def test_queued_jobs_survive_a_restart_in_order(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, queue_max=10)
    write_voice(settings.voices_dir, "v1")

    async def first_life() -> list[str]:
        async with make_runtime(settings) as runtime:
            m = runtime.manager
            ids = [(await m.submit(tts(f"text {i}"))).id for i in range(4)]
            await m.cancel(ids[1])
        return ids

    async def second_life(ids: list[str]) -> None:
        async with make_runtime(settings) as runtime:
            m = runtime.manager
            assert m.scheduler.queue.keys() == [ids[0], ids[2], ids[3]]
            assert (await m.get(ids[1])).state is JobState.CANCELLED  # type: ignore[union-attr]
            assert [m.queue_position(i) for i in (ids[0], ids[2], ids[3])] == [0, 1, 2]

    ids = asyncio.run(first_life())
    asyncio.run(second_life(ids))


def test_retention_removes_expired_outputs_and_keeps_fresh_ones(tmp_path: Path) -> None:
    now = [1_000_000.0]
    settings = make_settings(tmp_path, output_ttl_seconds=1000, confirmed_output_ttl_seconds=60)
    write_voice(settings.voices_dir, "v1")

    def finish(runtime: JobRuntime, job_id: str) -> Job:
        m = runtime.manager
        """A job that succeeded in an earlier life of the server (written straight to the store)."""
        job = m.store.create(
            job_id=job_id,
            kind="tts",
            request=complete_request(tts(job_id), "v1", m.settings),
            output_filename=make_output_filename(job_id, "wav"),
            confirm_token="token-" + job_id,
        )
        runtime.storage.save(job.output_filename, b"RIFF")
        m.store.transition(job_id, JobState.RUNNING)
        m.store.transition(
            job_id,
            JobState.SUCCEEDED,
            result=JobResult(job.output_filename, "wav", "audio/wav", 4, 1.0, 24000, 1, "r", "t", 1, 0.1),
        )
        return job

    async def scenario() -> None:
        async with make_runtime(settings, clock=lambda: now[0]) as runtime:
            m = runtime.manager
            old, confirmed, fresh = (finish(runtime, name) for name in ("old", "confirmed", "fresh"))
            stray = runtime.storage.save("orphan_00000000.wav", b"x")
            now[0] += 500
            await m.confirm_download(confirmed.id, confirmed.confirm_token)
            fresh_finish = now[0]
            now[0] += 100  # confirmed 100 s ago (> 60 s); old finished 600 s ago (< 1000 s)
            assert await m.cleanup_outputs() == 1
            assert not runtime.storage.exists(confirmed.output_filename)
            assert runtime.storage.exists(old.output_filename) and runtime.storage.exists(
                fresh.output_filename
            )
            assert (await m.get(confirmed.id)).output_deleted_at is not None  # type: ignore[union-attr]
            now[0] = fresh_finish + 1000  # everything past the 1000 s TTL, stray file is old too
            os.utime(runtime.storage.local_path(stray.filename), (now[0] - 2000, now[0] - 2000))  # type: ignore[arg-type]
            assert await m.cleanup_outputs() == 3
            assert list(runtime.storage.list_files()) == []

    asyncio.run(scenario())
