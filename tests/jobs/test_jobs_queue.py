"""The single engine queue: FIFO across kinds, bounded, removable."""

from __future__ import annotations

import asyncio

import pytest

from f5vi.jobs.queue import WorkItem, WorkQueue, WorkQueueFullError


def test_fifo_across_kinds_and_removal() -> None:
    async def scenario() -> None:
        queue = WorkQueue(maxsize=3)
        queue.put(WorkItem("tts", "a"))
        queue.put(WorkItem("stream", "b"))
        queue.put(WorkItem("tts", "c"))
        with pytest.raises(WorkQueueFullError):
            queue.put(WorkItem("tts", "d"))
        queue.put(WorkItem("tts", "recovered"), force=True)
        assert queue.keys() == ["a", "b", "c", "recovered"]
        assert queue.position("c") == 2
        assert queue.position("zzz") is None
        removed = queue.remove("b")
        assert removed is not None and removed.kind == "stream"
        assert queue.remove("b") is None
        first = await queue.get()
        assert first.key == "a"
        queue.put_front(first)
        assert [(await queue.get()).key for _ in range(3)] == ["a", "c", "recovered"]
        assert len(queue) == 0

    asyncio.run(scenario())


def test_get_waits_for_an_item() -> None:
    async def scenario() -> None:
        queue = WorkQueue(maxsize=2)
        getter = asyncio.create_task(queue.get())
        await asyncio.sleep(0.05)
        assert not getter.done()
        queue.put(WorkItem("tts", "x"))
        item = await asyncio.wait_for(getter, 2)
        assert item.key == "x"

    asyncio.run(scenario())
