"""StreamService on a real JobManager and the real (demo) engine, in-process: backpressure, stall
timeout, cancel while queued, stream vs one-shot, and log lines tagged with the work's id."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import numpy as np
import pytest

from f5vi.engine.errors import SynthesisCancelled
from f5vi.engine.synthesizer import Synthesizer
from f5vi.jobs.manager import JobManager
from f5vi.jobs.queue import WorkItem
from f5vi.jobs.requests import TTSInput
from f5vi.jobs.runtime import JobRuntime
from f5vi.jobs.streaming import StreamService
from f5vi.logging_setup import JobIdFilter
from f5vi.metrics import Metrics
from f5vi.storage import LocalOutputStorage
from f5vi.voices.library import VoiceLibrary
from realtime_helpers import LONG_TEXT, SHORT_TEXT
from server_helpers import local_settings, write_voice

VOICE = "v1"


def _run(
    tmp_path: Path,
    synth: Synthesizer,
    scenario: Callable[[JobManager, StreamService], Awaitable[None]],
    metrics: Metrics | None = None,
    **overrides: Any,
) -> None:
    settings = local_settings(
        tmp_path,
        device="cpu",
        normalizer="none",
        cleanup_interval_seconds=0,
        nfe_step=4,
        **overrides,
    )
    settings.ensure_dirs()
    write_voice(settings.voices_dir, VOICE)

    async def main() -> None:
        library = VoiceLibrary(settings.voices_dir, None, settings.max_reference_seconds)
        storage = LocalOutputStorage(settings.output_dir)
        async with JobRuntime(
            settings, library, storage, synthesizer=synth, stream_observer=metrics
        ) as runtime:
            await asyncio.wait_for(scenario(runtime.manager, runtime.streams), 120)

    asyncio.run(main())


async def _idle(manager: JobManager, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while manager.scheduler.current is not None or len(manager.scheduler.queue):
        assert time.monotonic() < deadline, "the engine did not become idle"
        await asyncio.sleep(0.02)


def test_a_reader_that_stalls_is_cut_off_and_frees_the_engine(
    tmp_path: Path, demo_synth: Synthesizer
) -> None:
    async def scenario(manager: JobManager, service: StreamService) -> None:
        stream = await service.open(TTSInput(text=LONG_TEXT, ref_name=VOICE))
        # Nobody reads: one piece fits in the buffer, the engine thread then waits for room...
        started = time.monotonic()
        await _idle(manager)
        waited = time.monotonic() - started
        # ...until the stall timeout cancels the synthesis; the engine is free again.
        assert stream.stats.outcome == "cancelled"
        assert stream.stats.pieces == 1
        assert waited >= 1.0
        first = await stream.get()
        assert first is not None and first.size > 0
        with pytest.raises(SynthesisCancelled):
            await stream.get()
        await stream.aclose()

    _run(tmp_path, demo_synth, scenario, stream_buffer_pieces=1, stream_stall_timeout_seconds=1.0)


def test_a_stream_closed_while_queued_never_runs(tmp_path: Path, demo_synth: Synthesizer) -> None:
    async def scenario(manager: JobManager, service: StreamService) -> None:
        job = await manager.submit(TTSInput(text=SHORT_TEXT, ref_name=VOICE))
        stream = await service.open(TTSInput(text=LONG_TEXT, ref_name=VOICE))
        assert manager.queue_position(stream.id) is not None or manager.scheduler.current is not None
        await stream.aclose()
        assert (await manager.wait(job.id, timeout=60)).state.value == "succeeded"
        await _idle(manager)
        assert stream.stats.started_at is None and stream.stats.outcome == "cancelled"
        assert service.active == 0

    _run(tmp_path, demo_synth, scenario)


def test_a_stream_closed_while_queued_gives_its_place_up_at_once(
    tmp_path: Path, demo_synth: Synthesizer
) -> None:
    """Issue 25, item 3: a one-shot OpenAI client that left kept its queue place until its turn."""

    async def scenario(manager: JobManager, service: StreamService) -> None:
        job = await manager.submit(TTSInput(text=LONG_TEXT, ref_name=VOICE))
        stream = await service.open(TTSInput(text=SHORT_TEXT, ref_name=VOICE), whole=True)
        assert manager.queue_position(stream.id) == 0  # behind the job (one at a time)
        await stream.aclose()
        assert manager.queue_position(stream.id) is None  # gone from the queue now, not at its turn
        assert service.active == 0 and stream.stats.outcome == "cancelled"
        assert not manager.peek(job.id).is_terminal  # type: ignore[union-attr]
        await manager.cancel(job.id)

    _run(tmp_path, demo_synth, scenario, engine_concurrency=1)


def test_streamed_pieces_add_up_to_the_one_shot_audio(tmp_path: Path, demo_synth: Synthesizer) -> None:
    metrics = Metrics()

    async def scenario(manager: JobManager, service: StreamService) -> None:
        stream = await service.open(TTSInput(text=LONG_TEXT, ref_name=VOICE, seed=3), label="test")
        pieces = [piece async for piece in stream]
        whole = await service.open(TTSInput(text=LONG_TEXT, ref_name=VOICE, seed=3), whole=True, label="test")
        one = [piece async for piece in whole]
        assert len(pieces) >= 3 and len(one) == 1
        streamed = np.concatenate(pieces)
        # Same chunks, same cross-fades; only the batching (padding) differs.
        assert abs(len(streamed) - len(one[0])) <= 4 * 256
        assert stream.stats.outcome == whole.stats.outcome == "completed"
        assert stream.stats.first_piece_at is not None and stream.stats.finished_at is not None
        first_after = stream.stats.first_piece_at - (stream.stats.started_at or 0.0)
        total = stream.stats.finished_at - (stream.stats.started_at or 0.0)
        assert first_after < 0.5 * total, (first_after, total)

    _run(tmp_path, demo_synth, scenario, metrics=metrics)
    assert metrics.streams.labels("test", "completed")._value.get() == 2
    assert metrics.synthesis_seconds.labels("stream")._sum.get() > 0


def test_log_lines_of_an_engine_turn_carry_its_id(tmp_path: Path, demo_synth: Synthesizer) -> None:
    records: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    capture = Capture()
    capture.addFilter(JobIdFilter())
    probe_logger = logging.getLogger("f5vi.test_probe")
    probe_logger.addHandler(capture)
    probe_logger.setLevel(logging.INFO)

    async def scenario(manager: JobManager, service: StreamService) -> None:
        done = asyncio.Event()

        async def probe(item: WorkItem) -> None:
            await anyio.to_thread.run_sync(probe_logger.info, "working in a thread")
            done.set()

        manager.scheduler.register("probe", probe)
        manager.scheduler.enqueue(WorkItem(kind="probe", key="job_probe_1"))
        await asyncio.wait_for(done.wait(), 30)
        probe_logger.info("outside any turn")

    try:
        _run(tmp_path, demo_synth, scenario)
    finally:
        probe_logger.removeHandler(capture)
    tags = {r.getMessage(): getattr(r, "job_id", None) for r in records}
    assert tags == {"working in a thread": "job_probe_1", "outside any turn": None}
