"""A bounded hand-over of audio pieces from an engine thread to the event loop.

The producer (a synthesis in a worker thread) blocks while the buffer is full, so a slow reader
slows the synthesis down instead of piling audio up in memory; a reader that takes nothing for
``stall_timeout`` seconds, or closes the channel, makes the producer's next put raise
:class:`~f5vi.engine.errors.SynthesisCancelled`, which stops the synthesis within one ODE step.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import deque

import numpy as np

from f5vi.engine.errors import SynthesisCancelled


class _End:
    """Sentinel: the producer finished (``error`` None) or failed."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class PieceChannel:
    """Create on the event loop; ``put_from_thread`` from one producer thread, ``get`` from the loop."""

    def __init__(self, max_items: int, stall_timeout: float) -> None:
        self.stall_timeout = stall_timeout
        self._max = max(1, max_items)
        self._items: deque[np.ndarray | _End] = deque()
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = False
        self._ended = False
        self._loop = asyncio.get_running_loop()

    @property
    def closed(self) -> bool:
        return self._closed

    async def get(self) -> np.ndarray | None:
        """The next piece, None at the end; raises what stopped the producer."""
        while True:
            if self._items:
                item = self._items.popleft()
                self._writable.set()
                if isinstance(item, _End):
                    self._ended = True
                    if item.error is not None:
                        raise item.error
                    return None
                return item
            if self._ended or self._closed:
                return None
            self._readable.clear()
            await self._readable.wait()

    def close(self) -> None:
        """Reader side: drop what is buffered; the producer's next put raises."""
        self._closed = True
        self._items.clear()
        self._writable.set()
        self._readable.set()

    async def _put(self, item: np.ndarray) -> None:
        while len(self._items) >= self._max and not self._closed:
            self._writable.clear()
            await self._writable.wait()
        if self._closed:
            raise SynthesisCancelled("the client went away")
        self._items.append(item)
        self._readable.set()

    def put_from_thread(self, piece: np.ndarray) -> None:
        """Hand a piece to the event loop; blocks while the buffer is full (backpressure)."""
        if self._closed:
            raise SynthesisCancelled("the client went away")
        future = asyncio.run_coroutine_threadsafe(self._put(piece), self._loop)
        try:
            future.result(timeout=self.stall_timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise SynthesisCancelled(
                f"the client read nothing for {self.stall_timeout:g} s; stream stopped"
            ) from None

    def finish(self, error: BaseException | None) -> None:
        """Producer side, event loop: mark the end (never blocks; the marker may exceed the bound)."""
        if not self._closed:
            self._items.append(_End(error))
            self._readable.set()
