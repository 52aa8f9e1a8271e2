"""Dependencies: the objects the lifespan put on ``app.state``, typed for routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from f5vi.config import Settings
from f5vi.jobs.manager import JobManager
from f5vi.jobs.requests import RequestBuilder
from f5vi.jobs.runtime import JobRuntime
from f5vi.jobs.scheduler import EngineScheduler
from f5vi.jobs.streaming import StreamService
from f5vi.metrics import Metrics
from f5vi.storage import OutputStorage
from f5vi.voices.library import VoiceLibrary


def _app_state(name: str) -> Callable[[Request], Any]:
    def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    get.__name__ = f"get_{name}"
    return get


def get_base_url(request: Request) -> str:
    """Absolute base for links: ``F5VI_PUBLIC_BASE_URL`` if set, else what the client called."""
    configured = request.app.state.settings.public_base_url
    return (configured or str(request.base_url)).rstrip("/")


SettingsDep = Annotated[Settings, Depends(_app_state("settings"))]
SchedulerDep = Annotated[EngineScheduler, Depends(_app_state("scheduler"))]
RequestsDep = Annotated[RequestBuilder, Depends(_app_state("requests"))]
ManagerDep = Annotated[JobManager, Depends(_app_state("manager"))]
StreamsDep = Annotated[StreamService, Depends(_app_state("streams"))]
VoicesDep = Annotated[VoiceLibrary, Depends(_app_state("voices"))]
StorageDep = Annotated[OutputStorage, Depends(_app_state("storage"))]
MetricsDep = Annotated[Metrics, Depends(_app_state("metrics"))]
RuntimeDep = Annotated[JobRuntime, Depends(_app_state("runtime"))]
"""For long-lived responses: ``async with runtime.connection() as stopping`` (see JobRuntime)."""
BaseUrlDep = Annotated[str, Depends(get_base_url)]
