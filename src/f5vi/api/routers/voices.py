"""Voice library: list, upload (wav/flac/mp3/ogg + optional transcript), get, delete.

Shipped voices (and any read-only directory) are listed and usable but answer 403 ``voice_read_only``
to DELETE and to uploads of their id; uploaded voices can be overwritten and deleted.
"""

from __future__ import annotations

import functools
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, File, Form, UploadFile, status

from f5vi.api.auth import bearer_scheme
from f5vi.api.deps import SchedulerDep, SettingsDep, VoicesDep
from f5vi.api.errors import ApiError
from f5vi.api.forms import StrictFormRoute
from f5vi.api.params import VoiceIdPath
from f5vi.api.responses import error_responses
from f5vi.api.schemas import VoiceDeleted, VoiceInfo, VoiceListResponse
from f5vi.voices.library import Voice, validate_voice_id
from f5vi.voices.names import MAX_VOICE_ID_CHARS, VOICE_ID_PATTERN

router = APIRouter(tags=["voices"], dependencies=[Depends(bearer_scheme)], route_class=StrictFormRoute)

_FORM_VOICE_ID_PATTERN = "^(?:[ \\t\\r\\n]*|" + VOICE_ID_PATTERN[1:-1] + ")$"
"""A voice id, or blank for "the file name without its extension"."""

_UPLOAD_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")


def voice_info(voice: Voice) -> VoiceInfo:
    transcript = voice.transcript
    return VoiceInfo(
        id=voice.id,
        wav=f"{voice.id}.wav",
        txt=f"{voice.id}.txt" if transcript is not None else None,
        path=f"{voice.audio_path.parent.name or 'voices'}/{voice.id}.wav",
        size_mb=round(voice.size_bytes / (1024 * 1024), 3),
        duration_seconds=round(voice.duration_seconds, 3),
        sample_rate=voice.sample_rate,
        channels=voice.channels,
        has_transcript=transcript is not None,
        reference_text=transcript[:100] if transcript is not None else None,
        transcript=transcript,
        synthetic=voice.synthetic,
        description=voice.description,
        read_only=voice.read_only,
    )


@router.get("/voices", response_model=VoiceListResponse, summary="List voices", responses=error_responses())
async def list_voices(voices: VoicesDep, settings: SettingsDep) -> VoiceListResponse:
    items = await anyio.to_thread.run_sync(voices.list)
    name = settings.voices_dir.name or "voices"
    infos = [voice_info(v) for v in items]
    return VoiceListResponse(voices=infos, count=len(infos), sample_dir=name)


@router.post(
    "/voices",
    response_model=VoiceInfo,
    status_code=status.HTTP_201_CREATED,
    summary="Upload a reference voice",
    description=(
        "Multipart form: `file` (WAV, FLAC, MP3 or OGG), `voice_id` (default: the file name without "
        "extension), optional `transcript` (exactly what is said, UTF-8; without it the clip is "
        "transcribed with PhoWhisper in the engine's turn), `overwrite` (of an uploaded voice). The id of a "
        "shipped (read-only) voice is refused with 403 `voice_read_only`."
    ),
    responses=error_responses(400, 403, 409, 413, 422, 429, 503, 507),
)
async def upload_voice(
    voices: VoicesDep,
    scheduler: SchedulerDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="Reference audio: WAV, FLAC, MP3 or OGG.")],
    voice_id: Annotated[
        str | None,
        Form(max_length=MAX_VOICE_ID_CHARS, json_schema_extra={"pattern": _FORM_VOICE_ID_PATTERN}),
    ] = None,
    transcript: Annotated[str | None, Form(max_length=4000)] = None,
    overwrite: Annotated[bool, Form()] = False,
) -> VoiceInfo:
    if voice_id is None or not voice_id.strip(" \t\r\n"):
        voice_id = _id_from_filename(file.filename)
    validate_voice_id(voice_id)
    if file.size is not None and file.size > settings.max_upload_bytes:
        raise ApiError(
            413, "voice_upload_too_large", f"upload is larger than {settings.max_upload_bytes} bytes"
        )
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise ApiError(
            413, "voice_upload_too_large", f"upload is larger than {settings.max_upload_bytes} bytes"
        )
    text = transcript if transcript is not None and transcript.strip() else None
    call = functools.partial(
        voices.upload, voice_id, data, text, (file.filename or "")[:200] or None, overwrite=overwrite
    )
    if text is not None:
        voice = await anyio.to_thread.run_sync(call)
    else:
        # Without a transcript the library runs ASR: heavy model work waits for the engine's turn.
        # What can be refused without decoding is refused first, without waiting in that queue.
        check = functools.partial(
            voices.check_upload, voice_id, data, None, file.filename, overwrite=overwrite
        )
        await anyio.to_thread.run_sync(check)
        voice = await scheduler.run_call(call)
    return voice_info(voice)


def _id_from_filename(filename: str | None) -> str:
    if not filename:
        raise ApiError(422, "validation_error", "voice_id is required (or upload a file with a name)")
    stem = filename
    for suffix in _UPLOAD_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    # Not Path(filename).stem: a name with directories is refused, not silently shortened.
    return validate_voice_id(stem)


@router.get(
    "/voices/{voice_id}",
    response_model=VoiceInfo,
    summary="Get one voice",
    responses=error_responses(400, 404, 422),
)
async def get_voice(voice_id: VoiceIdPath, voices: VoicesDep) -> VoiceInfo:
    voice = await anyio.to_thread.run_sync(voices.get, voice_id)
    return voice_info(voice)


@router.delete(
    "/voices/{voice_id}",
    response_model=VoiceDeleted,
    summary="Delete an uploaded voice",
    description="Shipped (read-only) voices cannot be deleted: 403 `voice_read_only`.",
    responses=error_responses(400, 403, 404, 422),
)
async def delete_voice(voice_id: VoiceIdPath, voices: VoicesDep) -> VoiceDeleted:
    await anyio.to_thread.run_sync(voices.delete, voice_id)
    return VoiceDeleted(id=voice_id)
