"""Run the HTTP API with uvicorn (``python -m f5vi serve`` / ``make serve``)."""

from __future__ import annotations

import logging

import uvicorn

from f5vi.api.app import create_app
from f5vi.config import Settings
from f5vi.logging_setup import uvicorn_log_config

logger = logging.getLogger(__name__)


def run(settings: Settings, demo_fallback: bool = False) -> None:
    """Serve on ``settings.host:settings.port`` until SIGINT/SIGTERM.

    The engine loads in the background after the port opens; with ``demo_fallback`` a model that
    cannot be loaded is replaced by the demo model (created in ``settings.demo_model_dir`` if needed),
    and the log and ``/health`` say loudly that it is a demo producing noise.
    """
    app = create_app(settings, demo_fallback=demo_fallback)
    logger.info(
        "f5vi listening on http://%s:%d (model %s%s)",
        settings.host,
        settings.port,
        settings.model,
        ", demo fallback on" if demo_fallback else "",
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=uvicorn_log_config(settings),
        server_header=False,
        timeout_graceful_shutdown=30,
    )
