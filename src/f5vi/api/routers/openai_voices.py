"""``GET /v1/audio/voices``: the voice names ``/v1/audio/speech`` accepts, for tools that list voices.

OpenAI has no such endpoint; OpenAI-compatible servers do, in two shapes: Kokoro-FastAPI answers
``{"voices": ["af_bella", ...]}`` (plain names), Open WebUI reads ``{"voices": [{"id", "name"}]}``
(it looks up ``voice["id"]`` and ``voice["name"]``). Objects with ``id`` and ``name`` serve Open WebUI
and every client that takes ``id``; plain names cannot carry what an alias maps to. Listed: the
library's voices (id order), then OpenAI's built-in names with the voice each one speaks with.
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from f5vi.api.auth import bearer_scheme
from f5vi.api.deps import SettingsDep, VoicesDep
from f5vi.api.openai_names import OPENAI_VOICES, resolve_voice_name
from f5vi.api.responses import error_responses
from f5vi.voices.library import VoiceLibrary

router = APIRouter(tags=["openai"], dependencies=[Depends(bearer_scheme)])


class SpeechVoice(BaseModel):
    id: str = Field(description="What to send as `voice`.")
    name: str = Field(description="A label for pickers.")
    voice: str = Field(description="The library voice that speaks (`GET /voices/{voice_id}`).")
    openai_alias: bool = Field(description="An OpenAI built-in name mapped to a voice of this server.")
    description: str | None = None


class SpeechVoiceList(BaseModel):
    voices: list[SpeechVoice]


@router.get(
    "/v1/audio/voices",
    response_model=SpeechVoiceList,
    summary="List speech voices (OpenAI-compatible servers)",
    description=(
        "Every `voice` `POST /v1/audio/speech` accepts by name: the library's voices, then OpenAI's "
        "built-in names (`alloy`, ...) with the library voice each maps to (a voice of that id, else "
        "`F5VI_DEFAULT_VOICE`, else the first voice). Empty when no voice is installed."
    ),
    responses=error_responses(),
)
async def list_speech_voices(voices: VoicesDep, settings: SettingsDep) -> SpeechVoiceList:
    listed = await anyio.to_thread.run_sync(speech_voices, voices, settings.default_voice)
    return SpeechVoiceList(voices=listed)


def speech_voices(library: VoiceLibrary, default_voice: str | None) -> list[SpeechVoice]:
    installed = library.list()
    listed = [
        SpeechVoice(
            id=v.id, name=v.id, voice=v.id, openai_alias=v.id in OPENAI_VOICES, description=v.description
        )
        for v in installed
    ]
    if not installed:
        return listed
    ids = {v.id for v in installed}
    for alias in sorted(OPENAI_VOICES - ids):
        target = resolve_voice_name(alias, library, default_voice)
        listed.append(SpeechVoice(id=alias, name=f"{alias} ({target})", voice=target, openai_alias=True))
    return listed
