"""JobManager driving the REAL engine (the demo model, CPU): success, progress, ordering, cancel,
graceful shutdown, failures. No HTTP here; ``test_server_*.py`` does the same over a real server."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from f5vi.config import Settings
from f5vi.engine.synthesizer import Synthesizer
from f5vi.jobs.errors import JobFinishedError
from f5vi.jobs.manager import JobManager
from f5vi.jobs.models import Job
from f5vi.jobs.requests import TTSInput
from f5vi.jobs.runtime import JobRuntime
from f5vi.jobs.states import JobState
from f5vi.storage import LocalOutputStorage
from f5vi.voices.library import VoiceLibrary
from server_helpers import local_settings, write_voice
from step_gate import StepGate

MEDIUM_TEXT = " ".join(["Hôm nay trời đẹp, chúng ta cùng nhau đi dạo."] * 2)
LONG_TEXT = " ".join(["Hôm nay trời đẹp, chúng ta cùng nhau đi dạo trong công viên."] * 12)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        device="cpu",
        normalizer="none",
        cleanup_interval_seconds=0,
        progress_persist_seconds=0.2,
        engine_concurrency=1,  # the serial engine: one job at a time (concurrent: test_engine_sharing.py)
    )
    values.update(overrides)
    return local_settings(tmp_path, **values)


def new_runtime(settings: Settings, synth: Synthesizer | None) -> JobRuntime:
    settings.ensure_dirs()
    library = VoiceLibrary(settings.voices_dir, None, settings.max_reference_seconds)
    return JobRuntime(settings, library, LocalOutputStorage(settings.output_dir), synthesizer=synth)


def run(
    tmp_path: Path, synth: Synthesizer, scenario: Callable[[JobManager], Awaitable[None]], **overrides: Any
) -> None:
    settings = make_settings(tmp_path, **overrides)
    write_voice(settings.voices_dir, "v1")

    async def main() -> None:
        async with new_runtime(settings, synth) as runtime:
            await asyncio.wait_for(scenario(runtime.manager), 120)

    asyncio.run(main())


def run_runtime(
    tmp_path: Path, synth: Synthesizer, scenario: Callable[[JobRuntime], Awaitable[None]], **overrides: Any
) -> None:
    """As :func:`run`, for a scenario that also needs the runtime's other parts (storage, voices)."""
    settings = make_settings(tmp_path, **overrides)
    write_voice(settings.voices_dir, "v1")

    async def main() -> None:
        async with new_runtime(settings, synth) as runtime:
            await asyncio.wait_for(scenario(runtime), 120)

    asyncio.run(main())


async def collect(manager: JobManager, job_id: str, into: list[Job]) -> None:
    with manager.subscribe(job_id) as updates:
        async for job in updates:
            into.append(job)
            if job.is_terminal:
                return


async def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


def test_job_runs_to_a_valid_wav_with_monotonic_progress(tmp_path: Path, demo_synth: Synthesizer) -> None:
    async def scenario(rt: JobRuntime) -> None:
        m = rt.manager
        job = await m.submit(TTSInput(text="Xin chào các bạn.", ref_name="v1", seed=123, nfe_step=16))
        seen: list[Job] = []
        watcher = asyncio.create_task(collect(m, job.id, seen))
        done = await m.wait(job.id, timeout=60)
        await asyncio.wait_for(watcher, 5)
        assert done.state is JobState.SUCCEEDED, (done.error_code, done.error_message)
        assert done.progress == 100 and done.attempts == 1 and done.started_at and done.finished_at
        progress = [j.progress for j in seen]
        assert progress == sorted(progress) and progress[-1] == 100
        assert all(p < 100 for p in progress[:-1])  # 100 only once it succeeded
        stages = {j.stage for j in seen}
        assert {"starting", "synthesizing"} <= stages  # stages shorter than a disk write may not show
        assert [j.state for j in seen][-1] is JobState.SUCCEEDED
        result = done.result
        assert result is not None and result.seed == 123 and result.filename == job.output_filename
        path = rt.storage.local_path(result.filename)
        assert path is not None
        audio, sr = sf.read(io.BytesIO(path.read_bytes()))
        info = sf.info(path)
        assert sr == 24_000 and info.subtype == "PCM_16" and info.channels == 1
        assert abs(len(audio) / sr - result.duration_seconds) < 0.01 and len(audio) > 0
        stored = m.store.get(job.id)
        assert stored is not None and stored.state is JobState.SUCCEEDED and stored.result == result

    run_runtime(tmp_path, demo_synth, scenario)


def test_jobs_run_one_at_a_time_in_submission_order(tmp_path: Path, demo_synth: Synthesizer) -> None:
    async def scenario(m: JobManager) -> None:
        events: list[Job] = []
        with m.subscribe() as updates:

            async def record() -> None:
                async for job in updates:
                    events.append(job)

            recorder = asyncio.create_task(record())
            jobs = [
                await m.submit(TTSInput(text=f"Câu số {i}.", ref_name="v1", nfe_step=8)) for i in range(3)
            ]
            # A plain engine call runs between two ODE steps: it does not wait for the three jobs.
            states_seen_by_call = await m.scheduler.run_call(lambda: [m.peek(j.id).state for j in jobs])  # type: ignore[union-attr]
            finals = [await m.wait(j.id, timeout=60) for j in jobs]
            recorder.cancel()
        assert all(f.state is JobState.SUCCEEDED for f in finals)
        running: set[str] = set()
        starts: list[str] = []
        for event in events:
            if event.state is JobState.RUNNING:
                if event.id not in running:
                    starts.append(event.id)
                running.add(event.id)
                assert len(running) == 1, "two jobs ran at once"
            elif event.is_terminal:
                running.discard(event.id)
        assert starts == [j.id for j in jobs]
        for before, after in itertools.pairwise(finals):
            assert after.started_at >= before.finished_at  # type: ignore[operator]
        assert JobState.QUEUED in states_seen_by_call  # the last job had not started yet

    run(tmp_path, demo_synth, scenario)


def test_cancel_a_running_job_stops_it_within_one_step(
    tmp_path: Path, demo_synth: Synthesizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cancel comes while a step of the job is held; that step ends and no other step of the
    job runs (what the engine guarantees: it stops within one ODE step), whatever the machine's load."""
    gate = StepGate(monkeypatch)
    gate.release_on_cancel(monkeypatch)

    async def scenario(rt: JobRuntime) -> None:
        m = rt.manager
        long_job = await m.submit(TTSInput(text=LONG_TEXT, ref_name="v1", nfe_step=64))
        after = await m.submit(TTSInput(text="Câu sau.", ref_name="v1", nfe_step=8))
        await wait_for(lambda: (m.peek(long_job.id) or long_job).progress > 8)
        gate.hold_at(gate.steps + 1)
        assert await asyncio.to_thread(gate.holding.wait, 60), "no step of the job after progress 8"
        running = m.peek(long_job.id)
        assert running is not None and running.state is JobState.RUNNING
        cancelled = await m.cancel(long_job.id, wait_seconds=60)
        assert cancelled.state is JobState.CANCELLED, cancelled
        assert gate.steps_after_cancel(64) == 0, gate.log[gate.steps_at_cancel or 0 :]
        assert cancelled.progress >= running.progress  # never backwards, even when cancelled
        assert not rt.storage.exists(long_job.output_filename)
        with pytest.raises(JobFinishedError):
            await m.cancel(long_job.id)
        assert (await m.wait(after.id, timeout=60)).state is JobState.SUCCEEDED  # the engine goes on
        assert gate.steps_after_cancel(8) == 8  # ... with the next job's steps

    run_runtime(tmp_path, demo_synth, scenario)


def test_graceful_stop_puts_the_running_job_back(
    tmp_path: Path, demo_synth: Synthesizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    write_voice(settings.voices_dir, "v1")
    gate = StepGate(monkeypatch)
    gate.release_on_cancel(monkeypatch)

    async def first_life() -> str:
        runtime = new_runtime(settings, demo_synth)
        await runtime.start()
        m = runtime.manager
        job = await m.submit(TTSInput(text=MEDIUM_TEXT, ref_name="v1", nfe_step=16, seed=9))
        await wait_for(lambda: (m.peek(job.id) or job).progress > 8)
        gate.hold_at(gate.steps + 1)
        assert await asyncio.to_thread(gate.holding.wait, 60)
        await runtime.stop()  # interrupts the job at the held step
        assert gate.steps_after_cancel(16) == 0, gate.log
        return job.id

    async def second_life(job_id: str) -> None:
        runtime = new_runtime(settings, demo_synth)
        m = runtime.manager
        stored = m.store.open().get(job_id)
        m.store.close()
        assert stored is not None and stored.state is JobState.QUEUED and stored.attempts == 0
        assert stored.progress > 8  # progress is kept, not reset
        async with runtime:
            assert m.scheduler.queue.keys() == [job_id]
            done = await m.wait(job_id, timeout=60)
            assert done.state is JobState.SUCCEEDED and done.attempts == 1
            assert runtime.storage.exists(done.output_filename)

    job_id = asyncio.run(first_life())
    asyncio.run(second_life(job_id))


def test_failures_are_reported_with_a_reason(tmp_path: Path, demo_synth: Synthesizer) -> None:
    async def scenario(rt: JobRuntime) -> None:
        m = rt.manager
        write_voice(m.settings.voices_dir, "gone")
        write_voice(m.settings.voices_dir, "untranscribed", transcript=None)
        blocker = await m.submit(TTSInput(text="Câu đầu.", ref_name="v1", nfe_step=8))
        gone = await m.submit(TTSInput(text="Câu hai.", ref_name="gone", nfe_step=8))
        no_text = await m.submit(TTSInput(text="Câu ba.", ref_name="untranscribed", nfe_step=8))
        rt.voices.delete("gone")  # deleted while the job waited
        assert (await m.wait(blocker.id, timeout=60)).state is JobState.SUCCEEDED
        failed = await m.wait(gone.id, timeout=60)
        assert failed.state is JobState.FAILED and failed.error_code == "voice_not_found"
        failed = await m.wait(no_text.id, timeout=60)
        assert failed.state is JobState.FAILED and failed.error_code == "transcription_unavailable"
        assert failed.stage == "transcribing"

    run_runtime(tmp_path, demo_synth, scenario)
