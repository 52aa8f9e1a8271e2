"""Dependencies: the objects the lifespan put on ``app.state``, typed for routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from f5vi.config import Settings
from f5vi.jobs.manager import JobManager
from f5vi.storage import OutputStorage
from f5vi.voices.library import VoiceLibrary


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_manager(request: Request) -> JobManager:
    return request.app.state.manager


def get_voices(request: Request) -> VoiceLibrary:
    return request.app.state.voices


def get_storage(request: Request) -> OutputStorage:
    return request.app.state.storage


def get_base_url(request: Request) -> str:
    """Absolute base for links: ``F5VI_PUBLIC_BASE_URL`` if set, else what the client called."""
    configured = request.app.state.settings.public_base_url
    return (configured or str(request.base_url)).rstrip("/")


SettingsDep = Annotated[Settings, Depends(get_settings)]
ManagerDep = Annotated[JobManager, Depends(get_manager)]
VoicesDep = Annotated[VoiceLibrary, Depends(get_voices)]
StorageDep = Annotated[OutputStorage, Depends(get_storage)]
BaseUrlDep = Annotated[str, Depends(get_base_url)]
