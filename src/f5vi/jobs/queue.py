"""The one queue in front of the engine.

Every kind of engine work (a TTS job, a stream) is a :class:`WorkItem` in this single FIFO, so kinds
share the engine fairly in arrival order. An item carries only its kind and key: each handler keeps
what it needs by key (the job tracker its jobs, the stream service its streams). Unlike
``asyncio.Queue`` it can drop a queued item (cancel) and tell an item's position (ETA of waiting jobs).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field


@dataclass(eq=False)
class WorkItem:
    kind: str
    """Selects the handler the engine task runs it with (``"tts"``, ``"stream"``)."""
    key: str
    """Identity for removal and position look-ups (the job or stream id)."""
    enqueued_at: float = field(default_factory=time.monotonic)


class WorkQueueFullError(Exception):
    pass


class WorkQueue:
    """Bounded FIFO of :class:`WorkItem`; used from the event loop thread only."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: deque[WorkItem] = deque()
        self._nonempty = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: WorkItem, *, force: bool = False) -> None:
        """Append ``item``; ``force`` ignores the bound (restart recovery must not drop jobs)."""
        if not force and len(self._items) >= self.maxsize:
            raise WorkQueueFullError
        self._items.append(item)
        self._nonempty.set()

    def put_front(self, item: WorkItem) -> None:
        """Give an item back at the head of the line (taken, but not started)."""
        self._items.appendleft(item)
        self._nonempty.set()

    async def get(self) -> WorkItem:
        while not self._items:
            self._nonempty.clear()
            await self._nonempty.wait()
        item = self._items.popleft()
        if not self._items:
            self._nonempty.clear()
        return item

    def remove(self, key: str) -> WorkItem | None:
        for item in self._items:
            if item.key == key:
                self._items.remove(item)
                return item
        return None

    def position(self, key: str) -> int | None:
        """0-based place in line (0: next to run), or None if not queued."""
        for index, item in enumerate(self._items):
            if item.key == key:
                return index
        return None

    def keys(self) -> list[str]:
        return [item.key for item in self._items]
