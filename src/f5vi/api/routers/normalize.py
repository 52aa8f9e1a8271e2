"""``POST /normalize``: the text exactly as the model will read it, per chunk, before any synthesis.

The route checks and completes the request with the same builder as ``POST /tts``
(:mod:`f5vi.jobs.requests`) and plans it through :meth:`~f5vi.engine.synthesizer.Synthesizer.plan`,
the function every synthesis plans with, so the preview and a job with the same text cannot differ. It
runs no model and does not queue: planning takes no engine lock (only a voice without a transcript
waits for the engine's turn to be transcribed, as its first job would).
"""

from __future__ import annotations

import functools

import anyio.to_thread
from fastapi import APIRouter, Depends

from f5vi.api.auth import bearer_scheme
from f5vi.api.deps import EngineDep, ManagerDep, SettingsDep
from f5vi.api.responses import error_responses
from f5vi.api.schemas import NormalizeRequest, NormalizeResponse
from f5vi.jobs.requests import TTSInput, needs_transcripts, with_transcripts

router = APIRouter(tags=["tts"], dependencies=[Depends(bearer_scheme)])


@router.post(
    "/normalize",
    response_model=NormalizeResponse,
    summary="Preview the normalised text, its chunks and the duration",
    description=(
        "Numbers, dates, money and abbreviations written as the model will read them, split into the "
        "chunks synthesis will use for this voice and speed, with upstream's duration estimate and "
        "warnings (characters the vocabulary lacks, unreadable symbols, a fallback normaliser). "
        "A text with `[voice_id]` tags shows each chunk's voice and each voice's part (`segments`). "
        "Takes the body of `POST /tts`; without `ref_name`, the default voice (`F5VI_DEFAULT_VOICE`, "
        "else the first voice). Queues nothing."
    ),
    responses=error_responses(400, 404, 413, 422, 503),
)
async def normalize(
    body: NormalizeRequest, engine: EngineDep, manager: ManagerDep, settings: SettingsDep
) -> NormalizeResponse:
    synthesizer = engine.require_ready()
    ref_name = body.ref_name or await anyio.to_thread.run_sync(
        manager.voices.default_voice_id, settings.default_voice
    )
    prepared = await manager.requests.prepare(TTSInput(text=body.text, ref_name=ref_name, speed=body.speed))
    request = prepared.synthesis
    if needs_transcripts(request):  # transcribed in the engine's turn, as its first job would be
        request = await engine.run_call(functools.partial(with_transcripts, request, manager.voices))
    plan = await anyio.to_thread.run_sync(synthesizer.plan, request)
    return NormalizeResponse.from_plan(
        plan,
        voice_id=prepared.voice.id,
        speed=prepared.request.speed,
        cross_fade_seconds=prepared.request.cross_fade_seconds,
    )
