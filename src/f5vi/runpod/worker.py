"""Hosting the f5vi job system inside a RunPod worker process (nothing over loopback HTTP).

::

    main thread           runpod.serverless.start(...)  -> async handler(job)      (SDK's event loop)
                                                              |  run_coroutine_threadsafe
    thread "f5vi-loop"    f5vi event loop: app lifespan -> JobRuntime (engine task, SQLite store)
                                           + uvicorn serving the f5vi app (downloads, confirmation)

The job system lives on its own loop so neither the SDK's loop nor a slow client can stall progress
or downloads. It is started through the app's own lifespan — the same code path as the HTTP server —
and the same app serves ``/output/<file>`` and ``/confirm-download/<job>`` for the results.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from f5vi.config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from f5vi.engine.synthesizer import Synthesizer
    from f5vi.jobs.manager import JobManager
    from f5vi.jobs.runtime import JobRuntime

logger = logging.getLogger("f5vi.runpod")
T = TypeVar("T")

EXIT_CONFIG_ERROR = 2
EXIT_MODEL_LOAD_FAILED = 4

LIFESPAN_START_TIMEOUT_SECONDS = 120.0
HTTP_START_TIMEOUT_SECONDS = 30.0


class StartupError(Exception):
    """The worker cannot take jobs; ``main`` prints ``message`` and exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class LoopThread:
    """An asyncio loop running forever in a daemon thread; coroutines are submitted to it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.submit(coro).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


class WorkerHost:
    """The f5vi app (lifespan entered by hand, on :class:`LoopThread`) and optionally its HTTP server."""

    def __init__(self, settings: Settings, synthesizer: Synthesizer, *, serve_http: bool) -> None:
        self.settings = settings
        self.serve_http = serve_http
        self._synthesizer = synthesizer
        self._loop: LoopThread | None = None
        self._app: FastAPI | None = None
        self._lifespan: contextlib.AbstractAsyncContextManager[Any] | None = None
        self._server: Any = None
        self._server_future: concurrent.futures.Future[Any] | None = None

    @property
    def running(self) -> bool:
        return self._loop is not None

    @property
    def runtime(self) -> JobRuntime:
        """The job system the app's lifespan built (manager, storage, ...)."""
        if self._app is None or self._lifespan is None:
            raise RuntimeError("the worker is not started")
        return self._app.state.runtime

    @property
    def manager(self) -> JobManager:
        return self.runtime.manager

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the f5vi loop (from any thread)."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("the worker is not started")
        return self._loop.submit(coro)

    def start(self) -> None:
        """Enter the app's lifespan (job system up) and start serving downloads. Raises StartupError."""
        from f5vi.api.app import create_app

        self._app = create_app(self.settings, synthesizer=self._synthesizer)
        self._loop = LoopThread("f5vi-loop")
        self._loop.start()
        try:
            self._loop.call(self._enter_lifespan(), timeout=LIFESPAN_START_TIMEOUT_SECONDS)
        except Exception as exc:
            self._loop.stop()
            self._loop = None
            raise StartupError(
                f"the job manager could not start: {type(exc).__name__}: {exc}", EXIT_CONFIG_ERROR
            ) from exc
        if self.serve_http:
            self._start_http()

    async def _enter_lifespan(self) -> None:
        assert self._app is not None
        lifespan = self._app.router.lifespan_context(self._app)
        await lifespan.__aenter__()
        self._lifespan = lifespan

    def _start_http(self) -> None:
        import uvicorn

        assert self._app is not None and self._loop is not None
        config = uvicorn.Config(
            self._app,
            host=self.settings.host,
            port=self.settings.port,
            lifespan="off",  # the lifespan already runs on this loop (see _enter_lifespan)
            log_level=self.settings.log_level.lower(),
            server_header=False,
            access_log=False,
            **self._app.state.uvicorn_options,  # the app's own connection handling (as `serve`)
        )
        server = uvicorn.Server(config)
        self._server = server
        self._server_future = self._loop.submit(server.serve())
        deadline = time.monotonic() + HTTP_START_TIMEOUT_SECONDS
        while not server.started:
            if self._server_future.done() or time.monotonic() > deadline:
                error = None
                if self._server_future.done():
                    with contextlib.suppress(BaseException):
                        error = self._server_future.exception()
                self.stop()
                raise StartupError(
                    f"the f5vi HTTP app could not listen on {self.settings.host}:{self.settings.port}"
                    + (f" ({type(error).__name__}: {error})" if error else "")
                    + "; set F5VI_PORT, or F5VI_RUNPOD_SERVE_HTTP=false with S3 delivery",
                    EXIT_CONFIG_ERROR,
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving, interrupt the running job (it stays queued on disk), close the store."""
        loop = self._loop
        if loop is None:
            return
        if self._server is not None:
            self._server.should_exit = True
            if self._server_future is not None:
                with contextlib.suppress(BaseException):
                    self._server_future.result(timeout=10)
        if self._lifespan is not None:
            lifespan, self._lifespan = self._lifespan, None
            try:
                loop.call(lifespan.__aexit__(None, None, None), timeout=timeout)
            except BaseException:
                logger.exception("job manager did not stop cleanly")
        loop.stop()
        self._loop = None
