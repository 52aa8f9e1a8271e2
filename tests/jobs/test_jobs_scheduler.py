"""EngineScheduler on its own: one FIFO for every kind of work, bounded, interruptible at shutdown."""

from __future__ import annotations

import asyncio
import threading

import pytest

from f5vi.engine.errors import SynthesisCancelled
from f5vi.engine.types import CancelToken
from f5vi.jobs.errors import PreviewsBusyError, QueueFullError, ServiceUnavailableError
from f5vi.jobs.queue import WorkItem
from f5vi.jobs.scheduler import EngineScheduler, EngineStatus


class FakeEngine:
    """Stands in for the synthesizer as the object attach() marks ready; a call runs at once in the
    calling worker thread (the real engine runs it between two ODE steps: tests/engine)."""

    def run_between_steps(self, fn, cancel=None):  # type: ignore[no-untyped-def]
        if cancel is not None:
            cancel.raise_if_cancelled()
        return fn()


def test_items_of_every_kind_run_one_at_a_time_in_arrival_order_and_a_call_does_not_wait_for_them() -> None:
    async def scenario() -> list[str]:
        scheduler = EngineScheduler(queue_max=8, concurrency=1)
        order: list[str] = []
        running = 0

        async def work(item: WorkItem) -> None:
            nonlocal running
            running += 1
            assert running == 1, "two items ran at once"
            await asyncio.sleep(0.01)
            order.append(item.key)
            running -= 1

        scheduler.register("a", work)
        scheduler.register("b", work)
        for key, kind in (("a1", "a"), ("b1", "b"), ("a2", "a")):
            scheduler.enqueue(WorkItem(kind=kind, key=key))
        scheduler.start()
        scheduler.attach(FakeEngine())  # type: ignore[arg-type]  # work waits for the engine
        call = await scheduler.run_call(lambda: threading.current_thread().name)
        order.append("call")
        while len(order) < 4:
            await asyncio.sleep(0.01)
        await scheduler.stop()
        assert call != threading.main_thread().name  # blocking calls run in a worker thread
        return order

    order = asyncio.run(scenario())
    assert [key for key in order if key != "call"] == ["a1", "b1", "a2"]
    assert order.index("call") < 3  # the call did not wait for the queue to drain


def test_the_queue_is_bounded_and_says_when_to_retry() -> None:
    async def scenario() -> None:
        scheduler = EngineScheduler(queue_max=2)

        async def work(item: WorkItem) -> None: ...

        scheduler.register("a", work)
        scheduler.enqueue(WorkItem(kind="a", key="1"))
        scheduler.enqueue(WorkItem(kind="a", key="2"))
        with pytest.raises(QueueFullError) as full:
            scheduler.enqueue(WorkItem(kind="a", key="3"))
        assert full.value.http_status == 429 and full.value.headers["Retry-After"] == "10"
        scheduler.enqueue(WorkItem(kind="a", key="restart"), force=True)  # recovery never drops a job
        assert scheduler.queue.keys() == ["1", "2", "restart"]
        with pytest.raises(ValueError, match="no handler"):
            scheduler.enqueue(WorkItem(kind="unknown", key="x"))

    asyncio.run(scenario())


def test_stop_interrupts_the_running_item_and_leaves_the_rest_queued() -> None:
    async def scenario() -> None:
        scheduler = EngineScheduler(queue_max=8, synthesizer=FakeEngine(), concurrency=1)  # type: ignore[arg-type]
        started = asyncio.Event()
        interrupted: list[str] = []
        release = asyncio.Event()

        async def work(item: WorkItem) -> None:
            started.set()
            await release.wait()

        def interrupt(item: WorkItem) -> None:
            interrupted.append(item.key)
            release.set()

        scheduler.register("job", work, interrupt=interrupt)
        for key in ("running", "waiting"):
            scheduler.enqueue(WorkItem(kind="job", key=key))
        scheduler.start()
        await asyncio.wait_for(started.wait(), 5)
        assert scheduler.current is not None and scheduler.current.key == "running"
        await asyncio.wait_for(scheduler.stop(timeout=5), 10)
        assert interrupted == ["running"]
        assert scheduler.current is None and scheduler.queue.keys() == ["waiting"]

    asyncio.run(scenario())


def test_engine_status_gates_live_work() -> None:
    async def scenario() -> None:
        scheduler = EngineScheduler(queue_max=2)
        assert scheduler.status is EngineStatus.LOADING
        with pytest.raises(ServiceUnavailableError) as loading:
            scheduler.require_ready()
        assert loading.value.headers == {"Retry-After": "5"}
        scheduler.failed("no weights")
        with pytest.raises(ServiceUnavailableError, match="failed to load"):
            scheduler.check_not_failed()
        # No engine turn will ever come: a blocking call runs at once instead of waiting forever.
        assert await scheduler.run_call(lambda: 42) == 42

    asyncio.run(scenario())


def test_jobs_and_streams_run_side_by_side_and_a_plain_call_runs_beside_them() -> None:
    async def scenario() -> list[tuple[str, int]]:
        scheduler = EngineScheduler(queue_max=16, synthesizer=FakeEngine(), concurrency=2)  # type: ignore[arg-type]
        seen: list[tuple[str, int]] = []
        running = 0

        async def work(item: WorkItem) -> None:
            nonlocal running
            running += 1
            seen.append((item.key, running))
            await asyncio.sleep(0.05)
            running -= 1

        def call() -> int:
            return running

        scheduler.register("job", work)
        for key in ("j1", "j2", "j3"):
            scheduler.enqueue(WorkItem(kind="job", key=key))
        scheduler.start()
        while running < 2:
            await asyncio.sleep(0.005)
        beside_call = await scheduler.run_call(call)
        seen.append(("call", beside_call))
        await scheduler.stop()
        return seen

    seen = asyncio.run(scenario())
    assert seen[:2] == [("j1", 1), ("j2", 2)]  # two at once: the concurrency
    assert ("call", 2) in seen  # it did not wait for the running work to drain (issue 25, item 3)
    assert max(n for key, n in seen if key != "call") == 2


def test_a_call_whose_caller_left_is_dropped_and_calls_are_bounded() -> None:
    async def scenario() -> None:
        scheduler = EngineScheduler(queue_max=1, synthesizer=FakeEngine(), concurrency=1)  # type: ignore[arg-type]
        scheduler.start()
        gate = threading.Event()
        ran: list[str] = []

        def slow() -> str:
            gate.wait(5)
            ran.append("slow")
            return "slow"

        first = asyncio.create_task(scheduler.run_call(slow))
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFullError):  # one call waits already: the bound is queue_max
            await scheduler.run_call(lambda: "more")
        gate.set()
        assert await first == "slow"
        token = CancelToken()
        token.cancel()
        with pytest.raises(SynthesisCancelled):  # its caller has gone: never run
            await scheduler.run_call(lambda: ran.append("gone"), cancel=token)
        assert ran == ["slow"]
        await scheduler.stop()

    asyncio.run(scenario())


def test_previews_are_bounded_like_the_queue() -> None:
    """Issue 25, item 4: POST /normalize work is bounded (429 with Retry-After beyond)."""

    async def scenario() -> None:
        scheduler = EngineScheduler(queue_max=8, synthesizer=FakeEngine(), concurrency=2)  # type: ignore[arg-type]
        async with scheduler.preview_slot(), scheduler.preview_slot():
            with pytest.raises(PreviewsBusyError) as busy:
                async with scheduler.preview_slot():
                    raise AssertionError("a third preview ran beside two with concurrency 2")
            assert busy.value.http_status == 429 and busy.value.headers["Retry-After"]
        async with scheduler.preview_slot():  # free again
            pass

    asyncio.run(scenario())
