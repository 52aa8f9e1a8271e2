"""Wiring of the real-time features into the app: metrics, streaming, their routers.

:func:`install_realtime` runs in ``create_app`` (routers, the app's own metrics registry);
:func:`realtime_services` wraps the lifespan's ``yield`` once the job manager runs (the streaming
service on the engine queue, the metrics watcher) and stops them first on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from f5vi.api.routers import events, metrics, openai_speech, stream_ws
from f5vi.jobs.manager import JobManager
from f5vi.jobs.streaming import StreamService
from f5vi.metrics import Metrics

ROUTER_MODULES = (openai_speech, events, metrics, stream_ws)


def install_realtime(app: FastAPI) -> None:
    app.state.metrics = Metrics()
    for module in ROUTER_MODULES:
        app.include_router(module.router)


@contextlib.asynccontextmanager
async def realtime_services(app: FastAPI, manager: JobManager) -> AsyncIterator[None]:
    app_metrics: Metrics = app.state.metrics
    service = StreamService(manager, metrics=app_metrics)
    app.state.streams = service
    watcher = app_metrics.watch(manager)
    try:
        yield
    finally:
        await service.close_all()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
