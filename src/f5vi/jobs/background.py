"""Fire-and-forget coroutines of the job system, kept referenced until they end and awaited at close.

asyncio holds only a weak reference to a task, so a task nobody keeps may vanish mid-write; and a task
that fails with nobody awaiting it loses its exception to a "never retrieved" warning at garbage
collection. Every such task of the job system (progress writes today) goes through here instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

logger = logging.getLogger(__name__)


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run ``coro`` on the running loop; a failure is logged, never lost."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        log_task_failure(task)

    async def wait(self) -> None:
        """Wait for every task spawned so far (at close: a progress write still in flight lands)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def log_task_failure(task: asyncio.Task[Any]) -> None:
    """Done callback of a background task: its failure is logged, never "never retrieved"."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        logger.error("background task %s failed: %s", task.get_name(), exc, exc_info=exc)
