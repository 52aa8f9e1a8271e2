"""Following one job until it ends: the one loop behind SSE, the RunPod worker and ``JobManager.wait``.

Getting this right has three traps, which is why it is written once:

- subscribe *before* reading the current state, or a change between the two is lost;
- an update can still be missed (a terminal state published before the subscription existed, or one
  dropped from a full buffer of a slow reader), so when nothing arrives for ``idle_seconds`` the job is
  read again, and a terminal state found that way ends the stream like a published one;
- a reader that must do something periodically (an SSE keep-alive, a deadline check) is handed
  ``None`` at each such idle interval instead of blocking until the next change.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any

from f5vi.jobs.errors import UnknownJobError
from f5vi.jobs.events import Subscription
from f5vi.jobs.models import Job

DEFAULT_IDLE_SECONDS = 5.0


async def follow_job(
    job_id: str,
    *,
    read: Callable[[str], Awaitable[Job | None]],
    subscribe: Callable[[str], AbstractContextManager[Subscription]],
    idle_seconds: float = DEFAULT_IDLE_SECONDS,
    stop: asyncio.Event | None = None,
) -> AsyncIterator[Job | None]:
    """Snapshots of ``job_id``: its current state first, then each change, the last one terminal.

    Yields ``None`` after ``idle_seconds`` without a change (the job was re-read and is not final).
    Ends early, without a terminal snapshot, once ``stop`` is set (the server is shutting down).
    Raises :class:`UnknownJobError` if the job does not exist.
    """
    with subscribe(job_id) as updates:
        current = await read(job_id)
        if current is None:
            raise UnknownJobError(job_id)
        yield current
        while not current.is_terminal:
            if stop is not None and stop.is_set():
                return
            update = await _next_update(updates, stop, idle_seconds)
            if stop is not None and stop.is_set():
                return
            if update is None:
                latest = await read(job_id)
                if latest is None or not latest.is_terminal:
                    yield None
                    continue
                update = latest
            current = update
            yield current


async def _next_update(updates: Subscription, stop: asyncio.Event | None, timeout: float) -> Job | None:
    """The next published snapshot; None after ``timeout`` or once ``stop`` is set."""
    update = asyncio.ensure_future(updates.get())
    waiters: set[asyncio.Future[Any]] = {update}
    if stop is not None:
        waiters.add(asyncio.ensure_future(stop.wait()))
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    if update.done() and not update.cancelled():
        return update.result()
    return None
