"""Stop work for a client that has gone: a request whose answer nobody will read frees its place."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

logger = logging.getLogger(__name__)
T = TypeVar("T")

DISCONNECT_POLL_SECONDS = 0.25


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """Await ``work``; if the client disconnects first, cancel it and return None.

    Cancelling reaches whatever ``work`` waits for: an engine call not started yet is dropped
    (:meth:`~f5vi.jobs.scheduler.EngineScheduler.run_call`).
    """
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_SECONDS)
            if done:
                return task.result()
            if await request.is_disconnected():
                logger.info(
                    "%s %s: the client disconnected; its work is dropped", request.method, request.url.path
                )
                return None
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
