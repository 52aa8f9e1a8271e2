"""Run the HTTP API with uvicorn (``python -m f5vi serve`` / ``make serve``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
from types import FrameType

import uvicorn
from fastapi import FastAPI

from f5vi.api.app import create_app
from f5vi.config import Settings
from f5vi.logging_setup import uvicorn_log_config

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class DrainingServer(uvicorn.Server):
    """uvicorn, but SIGTERM/SIGINT first drains the job system, then uvicorn closes connections.

    uvicorn's own order is: stop listening, close WebSockets and wait for the other connections
    (up to the graceful timeout), then run the app's shutdown. A connected SSE client would hold that
    wait open while the engine kept working through the queue, and a WebSocket would be cut without
    a word. So the first signal drains first — streams get their last frame and end, the running job
    goes back to the queue — and only then lets uvicorn shut down; a second signal exits at once.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: concurrent.futures.Future[None] | None = None
        self._grace = float(config.timeout_graceful_shutdown or 0)

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        runtime = getattr(self._app.state, "runtime", None)
        if runtime is None or self._loop is None or self._draining is not None or self.should_exit:
            super().handle_exit(sig, frame)
            return
        logger.info("signal %d: draining (running job back to the queue, streams closed)", sig)

        async def drain_then_exit() -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(runtime.begin_shutdown(), self._grace + 1.0)
            super(DrainingServer, self).handle_exit(sig, frame)

        self._draining = asyncio.run_coroutine_threadsafe(drain_then_exit(), self._loop)


def run(settings: Settings, demo_fallback: bool | None = None) -> None:
    """Serve on ``settings.host:settings.port`` until SIGINT/SIGTERM.

    The engine loads in the background after the port opens; with ``demo_fallback`` (default:
    ``settings.demo_fallback``, F5VI_DEMO_FALLBACK) a model that cannot be loaded is replaced by the
    demo model (created in ``settings.demo_model_path`` if needed), and the log and ``/health`` say
    loudly that it is a demo producing noise.
    """
    if demo_fallback is None:
        demo_fallback = settings.demo_fallback
    app = create_app(settings, demo_fallback=demo_fallback)
    if settings.host not in LOOPBACK_HOSTS and not (settings.api_key and settings.api_key.get_secret_value()):
        logger.warning(
            "listening on %s without F5VI_API_KEY: anyone who can reach the port can use the API "
            "(see README, 'Before exposing the port')",
            settings.host,
        )
    logger.info(
        "f5vi listening on http://%s:%d (model %s%s)",
        settings.host,
        settings.port,
        settings.model,
        ", demo fallback on" if demo_fallback else "",
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=uvicorn_log_config(settings),
        server_header=False,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
        **app.state.uvicorn_options,
    )
    DrainingServer(config, app).run()
