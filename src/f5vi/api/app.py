"""The FastAPI application: ``create_app(settings)``.

The lifespan builds the voice library, output storage and the job system
(:class:`~f5vi.jobs.runtime.JobRuntime`), starts it (jobs resume from the database) and loads the
engine in a worker thread: the server answers at once (``/health`` says ``loading``, 503) and queued
jobs run as soon as the model is ready. On shutdown the running job is interrupted and stays queued
for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import anyio.to_thread
from fastapi import FastAPI
from fastapi.routing import APIRoute

from f5vi import __version__
from f5vi.api.auth import ApiKeyMiddleware
from f5vi.api.docs import install_offline_docs
from f5vi.api.errors import install_error_handlers
from f5vi.api.http_server import uvicorn_options
from f5vi.api.limits import BodyLimitMiddleware
from f5vi.api.playground import install_playground
from f5vi.api.routers import (
    admin,
    downloads,
    events,
    health,
    metrics,
    normalize,
    openai_models,
    openai_speech,
    openai_voices,
    output,
    status,
    stream_ws,
    subtitles,
    tts,
    voices,
)
from f5vi.api.served_schema import install_keyless_openapi
from f5vi.config import Settings
from f5vi.engine.loading import load_synthesizer
from f5vi.errors import scrub
from f5vi.jobs.runtime import JobRuntime
from f5vi.jobs.scheduler import EngineScheduler
from f5vi.jobs.shared_voices import voice_library
from f5vi.metrics import Metrics
from f5vi.storage import output_storage
from f5vi.voices.library import VoiceLibrary

if TYPE_CHECKING:
    from f5vi.engine.synthesizer import Synthesizer

logger = logging.getLogger(__name__)

EngineLoader = Callable[[Settings], "Synthesizer"]


DESCRIPTION = """\
Vietnamese text-to-speech (F5-TTS) with zero-shot voice cloning.

Submit text with `POST /tts` (202), poll `GET /tts/progress/{job_id}`, download `GET /output/{filename}`,
then confirm with `POST /confirm-download/{job_id}?token=...`. Errors always look like
`{"error": {"code": "...", "message": "..."}}`. When the server sets `F5VI_API_KEY`, every route except
`/health` needs `Authorization: Bearer <key>` (the docs and the `/ui` playground page, which asks for the
key, are public too). Preview how a text will be read, chunk by chunk, with `POST /normalize`.
"""


ROUTER_MODULES = (
    health,
    status,
    voices,
    tts,
    subtitles,
    normalize,
    output,
    downloads,
    admin,
    openai_models,
    openai_voices,
    openai_speech,
    events,
    metrics,
    stream_ws,
)
"""Every router of the app, in the order the OpenAPI document lists them."""


def _operation_id(route: APIRoute) -> str:
    return route.name


def json_body_limit(settings: Settings) -> int:
    """JSON requests: room for the longest allowed text, \\u-escaped, plus the other fields."""
    return min(settings.max_request_bytes, max(64 * 1024, settings.max_text_chars * 6 + 16 * 1024))


def create_app(
    settings: Settings | None = None,
    *,
    synthesizer: Synthesizer | None = None,
    demo_fallback: bool | None = None,
    engine_loader: EngineLoader | None = None,
) -> FastAPI:
    """Build the app. ``synthesizer``: use this loaded engine; otherwise the lifespan loads one
    (``engine_loader``, default :func:`~f5vi.engine.loading.load_synthesizer`, falling back to
    the demo model if ``demo_fallback``, default ``settings.demo_fallback``)."""
    settings = settings or Settings()
    fallback = settings.demo_fallback if demo_fallback is None else demo_fallback

    def default_loader(s: Settings) -> Synthesizer:
        return load_synthesizer(s, demo_fallback=fallback)

    loader = engine_loader or default_loader

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.ensure_dirs()
        storage = output_storage(settings)
        library = voice_library(settings)  # uploads shared through PostgreSQL with a shared job store
        app_metrics: Metrics = app.state.metrics
        runtime = JobRuntime(settings, library, storage, synthesizer=synthesizer, stream_observer=app_metrics)
        app.state.storage = storage
        app.state.voices = library
        app.state.runtime = runtime
        app.state.scheduler = runtime.scheduler
        app.state.requests = runtime.requests
        app.state.manager = runtime.manager
        app.state.streams = runtime.streams
        await runtime.start()
        loading: asyncio.Task[None] | None = None
        if synthesizer is None:
            loading = asyncio.create_task(
                _load_engine(runtime.scheduler, library, settings, loader), name="f5vi-load"
            )
        else:
            _attach_transcriber(library, settings, synthesizer)
        watcher = app_metrics.watch(runtime.manager)
        try:
            yield
        finally:
            for task in (loading, watcher):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await runtime.stop()

    app = FastAPI(
        title="f5vi",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        docs_url=None,
        redoc_url=None,
    )
    install_offline_docs(app)
    install_playground(app)  # the web page at /ui (not part of the API schema)
    app.state.settings = settings
    app.state.metrics = Metrics()  # per app: tests build several apps in one process
    app.state.started_at = int(time.time())
    app.state.uvicorn_options = uvicorn_options(settings)
    """How every uvicorn server of this app handles connections (``serve`` and the RunPod worker's)."""
    install_error_handlers(app)
    for module in ROUTER_MODULES:
        app.include_router(module.router)

    json_limit = json_body_limit(settings)

    def limit_for(method: str, path: str) -> int:
        return settings.max_request_bytes if (method == "POST" and path == "/voices") else json_limit

    app.add_middleware(
        BodyLimitMiddleware, limit_for=limit_for, idle_timeout=settings.http_body_idle_timeout_seconds
    )
    if settings.api_key is not None and settings.api_key.get_secret_value():
        app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key.get_secret_value())  # outermost
    else:
        install_keyless_openapi(app)  # /openapi.json says what this server requires: no key
    return app


async def _load_engine(
    engine: EngineScheduler, library: VoiceLibrary, settings: Settings, loader: EngineLoader
) -> None:
    try:
        synth = await anyio.to_thread.run_sync(loader, settings, abandon_on_cancel=True)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.exception("the synthesis engine failed to load")
        engine.failed(scrub(f"{type(exc).__name__}: {exc}"))
        return
    _attach_transcriber(library, settings, synth)
    engine.attach(synth)
    info = synth.info
    logger.info(
        "engine ready: model=%s arch=%s demo=%s device=%s dtype=%s",
        info.model,
        info.arch,
        info.is_demo,
        info.device,
        info.dtype,
    )


def _attach_transcriber(library: VoiceLibrary, settings: Settings, synth: Synthesizer) -> None:
    """One speech recogniser per process, on the engine's device (loaded on first use): voices without
    a transcript and verification (``verify``) share it. With the demo fallback it falls back to the
    demo recogniser (random weights, logged loudly) when F5VI_ASR_MODEL cannot load."""
    if library.transcriber is None:
        from f5vi.engine.synthesizer import make_transcriber

        library.transcriber = synth.transcriber or make_transcriber(
            settings, synth.info.device, demo=synth.info.is_demo
        )
    synth.transcriber = library.transcriber
