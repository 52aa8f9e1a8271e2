"""A job database that stops taking writes mid-job (issue 25, items 1 and 2), on the real engine.

SQLite's ``PRAGMA max_page_count`` (set to the current size, free pages used up) makes every write
that needs a page fail with "database or disk is full", as a full disk does: the job's result is not
recorded, its output goes and it fails ``insufficient_storage``. Where not even a small write goes
through (a full tmpfs, where the WAL cannot grow: here ``PRAGMA query_only``), the job's end cannot be
written at all: it must not stay "running" for ever. The end is kept, a kill still reaches the
job, and the store and memory agree as soon as the store takes writes again; no background task dies
unobserved. A full output disk (``/dev/full``: the kernel's own ENOSPC) fails the job
``output_write_failed`` with the reason, leaving no file.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from f5vi.config import Settings
from f5vi.engine.synthesizer import Synthesizer
from f5vi.errors import F5viError
from f5vi.jobs.manager import JobManager
from f5vi.jobs.requests import TTSInput
from f5vi.jobs.runtime import JobRuntime
from f5vi.jobs.states import JobState
from f5vi.jobs.store import JobStore
from f5vi.storage import LocalOutputStorage, StoredFile
from f5vi.voices.library import VoiceLibrary
from server_helpers import local_settings, write_voice

# Long enough that its result (normalised text, timings) needs new database pages.
LONG_TEXT = " ".join(["Hôm nay trời đẹp, chúng ta cùng nhau đi dạo trong công viên."] * 40)
UNLIMITED_PAGES = 1_073_741_823


def fill(store: JobStore) -> None:
    """No page left: the size is the limit and the free pages are used up (test-only table)."""
    conn = store._database.connection  # the store's own connection (max_page_count is per connection)
    conn.execute("CREATE TABLE IF NOT EXISTS test_filler (b BLOB)")
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    for size in (2048, 256, 16):
        try:
            while True:
                conn.execute("INSERT INTO test_filler VALUES (zeroblob(?))", (size,))
        except sqlite3.OperationalError as exc:
            assert "full" in str(exc), exc


def free(store: JobStore) -> None:
    store._database.connection.execute(f"PRAGMA max_page_count = {UNLIMITED_PAGES}")


def run(
    tmp_path: Path,
    synth: Synthesizer,
    scenario: Callable[[JobManager, Settings], Awaitable[None]],
    storage: Any = None,
) -> list[dict[str, Any]]:
    settings = local_settings(
        tmp_path,
        device="cpu",
        normalizer="none",
        cleanup_interval_seconds=0,
        progress_persist_seconds=0.05,
        engine_concurrency=1,
    )
    settings.ensure_dirs()
    write_voice(settings.voices_dir, "v1")
    unobserved: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: unobserved.append(context))
        library = VoiceLibrary(settings.voices_dir, None, settings.max_reference_seconds)
        output = storage or LocalOutputStorage(settings.output_dir)
        async with JobRuntime(settings, library, output, synthesizer=synth) as runtime:
            await asyncio.wait_for(scenario(runtime.manager, settings), 240)
        gc.collect()
        await asyncio.sleep(0)

    asyncio.run(main())
    return unobserved


async def wait_for(predicate: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


async def _while_running(m: JobManager, fault: Callable[[JobStore], None]) -> str:
    """Start a long job; once it synthesises, apply ``fault`` to the store; return when its turn is over."""
    job = await m.submit(TTSInput(text=LONG_TEXT, ref_name="v1", nfe_step=2, seed=1))
    await wait_for(lambda: (j := m.peek(job.id)) is not None and j.stage == "synthesizing")
    await m._tracker.db(fault, m.store)
    await wait_for(lambda: not m.scheduler.running)  # its engine turn is over
    return job.id


def refuse_writes(store: JobStore) -> None:
    """Every write fails, however small (a full tmpfs where not even the WAL can grow)."""
    store._database.connection.execute("PRAGMA query_only = 1")


def take_writes(store: JobStore) -> None:
    store._database.connection.execute("PRAGMA query_only = 0")


def _outputs(settings: Settings) -> list[Path]:
    return sorted(settings.output_dir.iterdir())


def test_a_full_database_at_the_end_fails_the_job_insufficient_storage(
    tmp_path: Path, demo_synth: Synthesizer
) -> None:
    async def scenario(m: JobManager, settings: Settings) -> None:
        job_id = await _while_running(m, fill)
        stored = await m._tracker.db(m.store.get, job_id)
        assert stored is not None and stored.state is JobState.FAILED, stored
        assert stored.error_code == "insufficient_storage" and "F5VI_DATA_DIR" in (stored.error_message or "")
        assert m.peek(job_id).state is JobState.FAILED  # type: ignore[union-attr]
        assert _outputs(settings) == []  # the output whose success was not recorded is gone
        await m._tracker.db(free, m.store)
        again = await m.submit(TTSInput(text="Xin chào.", ref_name="v1", nfe_step=2))
        assert (await m.wait(again.id, timeout=120)).state is JobState.SUCCEEDED

    assert run(tmp_path, demo_synth, scenario) == []  # no "Task exception was never retrieved"


def test_an_end_the_store_refuses_is_written_as_soon_as_it_takes_writes(
    tmp_path: Path, demo_synth: Synthesizer
) -> None:
    async def scenario(m: JobManager, settings: Settings) -> None:
        job_id = await _while_running(m, refuse_writes)
        stored = await m._tracker.db(m.store.get, job_id)
        assert stored is not None and stored.state is JobState.RUNNING  # neither its success nor its failure
        assert m.peek(job_id).state is JobState.RUNNING  # memory says what the store says  # type: ignore[union-attr]
        assert _outputs(settings) == []
        await m._tracker.db(take_writes, m.store)
        await wait_for(lambda: m.peek(job_id).state is JobState.FAILED)  # type: ignore[union-attr]
        stored = await m._tracker.db(m.store.get, job_id)
        assert stored is not None and stored.state is JobState.FAILED
        assert stored.error_code == "job_store_write_failed" and "submit the job again" in (
            stored.error_message or ""
        )
        again = await m.submit(TTSInput(text="Xin chào.", ref_name="v1", nfe_step=2))
        assert (await m.wait(again.id, timeout=120)).state is JobState.SUCCEEDED

    assert run(tmp_path, demo_synth, scenario) == []  # no "Task exception was never retrieved"


def test_a_kill_while_the_store_refuses_writes_takes_effect_once_it_takes_them(
    tmp_path: Path, demo_synth: Synthesizer
) -> None:
    async def scenario(m: JobManager, settings: Settings) -> None:
        job_id = await _while_running(m, refuse_writes)
        killed = await m.cancel(job_id, wait_seconds=0.2)
        assert killed.state is JobState.RUNNING  # accepted; the store cannot say so yet
        await m._tracker.db(take_writes, m.store)
        await wait_for(lambda: m.peek(job_id).state is JobState.CANCELLED)  # type: ignore[union-attr]
        stored = await m._tracker.db(m.store.get, job_id)
        assert stored is not None and stored.state is JobState.CANCELLED

    assert run(tmp_path, demo_synth, scenario) == []


def test_a_submit_to_a_full_database_is_507_insufficient_storage(
    tmp_path: Path, demo_synth: Synthesizer
) -> None:
    async def scenario(m: JobManager, settings: Settings) -> None:
        await m._tracker.db(fill, m.store)
        try:
            await m.submit(TTSInput(text=" ".join([LONG_TEXT] * 5), ref_name="v1", nfe_step=2))  # > 1 page
        except F5viError as exc:
            assert (exc.code, exc.http_status) == ("insufficient_storage", 507), exc
            assert exc.headers["Retry-After"]
        else:
            raise AssertionError("a submit to a full database was accepted")
        await m._tracker.db(free, m.store)
        job = await m.submit(TTSInput(text="Xin chào.", ref_name="v1", nfe_step=2))
        assert (await m.wait(job.id, timeout=120)).state is JobState.SUCCEEDED

    assert run(tmp_path, demo_synth, scenario) == []


class DevFullStorage(LocalOutputStorage):
    """The output directory, but the bytes go to ``/dev/full``: the kernel answers ENOSPC."""

    def save(self, filename: str, data: bytes) -> StoredFile:
        with open("/dev/full", "wb") as handle:
            handle.write(data)
            handle.flush()
        raise AssertionError("unreachable: /dev/full takes no bytes")


def test_an_output_that_cannot_be_written_fails_output_write_failed(
    tmp_path: Path, demo_synth: Synthesizer
) -> None:
    async def scenario(m: JobManager, settings: Settings) -> None:
        job = await m.submit(TTSInput(text="Xin chào các bạn.", ref_name="v1", nfe_step=2))
        done = await m.wait(job.id, timeout=120)
        assert done.state is JobState.FAILED and done.error_code == "output_write_failed", done
        assert (
            "No space left on device" in (done.error_message or "")
            and "F5VI_OUTPUT_DIR" in done.error_message
        )
        assert _outputs(settings) == []

    assert run(tmp_path, demo_synth, scenario, storage=DevFullStorage(tmp_path / "out")) == []
