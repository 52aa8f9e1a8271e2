"""Fan-out of job updates to subscribers (SSE, the RunPod progress reporter, tests).

Each subscriber has its own bounded buffer. Updates are full job snapshots, so when a slow
subscriber's buffer is full the oldest one is dropped: the reader still ends on the latest state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType

from f5vi.jobs.models import Job


class Subscription:
    def __init__(self, hub: EventHub, job_id: str | None, maxsize: int) -> None:
        self._hub = hub
        self.job_id = job_id
        self._queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=maxsize)
        self.closed = False

    def _offer(self, job: Job) -> None:
        if self.job_id is not None and job.id != self.job_id:
            return
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(job)

    async def get(self, timeout: float | None = None) -> Job:
        return await asyncio.wait_for(self._queue.get(), timeout)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._hub._subscribers.discard(self)

    def __aiter__(self) -> AsyncIterator[Job]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Job]:
        while not self.closed:
            yield await self._queue.get()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventHub:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def subscribe(self, job_id: str | None = None, *, maxsize: int = 256) -> Subscription:
        """Updates of one job (or of all jobs when ``job_id`` is None) from now on."""
        sub = Subscription(self, job_id, maxsize)
        self._subscribers.add(sub)
        return sub

    def followed(self) -> set[str]:
        """The job ids someone subscribed to (one job each; a subscription to all is not counted)."""
        return {sub.job_id for sub in self._subscribers if sub.job_id is not None}

    def publish(self, job: Job) -> None:
        for sub in list(self._subscribers):
            sub._offer(job)
