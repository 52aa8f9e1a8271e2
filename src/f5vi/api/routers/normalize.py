"""``POST /normalize``: the text exactly as the model will read it, per chunk, before any synthesis.

The route plans the request through :meth:`~f5vi.engine.synthesizer.Synthesizer.plan`, the same
function every synthesis plans with, so the preview and a job with the same text cannot differ. It
runs no model and does not queue: planning takes no engine lock (only a voice without a transcript
waits for the engine's turn to be transcribed, as its first job would).
"""

from __future__ import annotations

import functools

import anyio.to_thread
from fastapi import APIRouter, Depends

from f5vi.api.auth import bearer_scheme
from f5vi.api.deps import ManagerDep, SettingsDep
from f5vi.api.responses import error_responses
from f5vi.api.schemas import NormalizeRequest, NormalizeResponse
from f5vi.engine.synthesizer import Synthesizer
from f5vi.engine.types import SynthesisRequest
from f5vi.jobs.errors import ServiceUnavailableError
from f5vi.jobs.manager import ENGINE_FAILED, JobManager
from f5vi.voices.library import Voice

router = APIRouter(tags=["tts"], dependencies=[Depends(bearer_scheme)])

LOADING_RETRY_SECONDS = 5


@router.post(
    "/normalize",
    response_model=NormalizeResponse,
    summary="Preview the normalised text, its chunks and the duration",
    description=(
        "Numbers, dates, money and abbreviations written as the model will read them, split into the "
        "chunks synthesis will use for this voice and speed, with upstream's duration estimate and "
        "warnings (characters the vocabulary lacks, unreadable symbols, a fallback normaliser). "
        "Takes the body of `POST /tts`; queues nothing."
    ),
    responses=error_responses(400, 404, 413, 422, 503),
)
async def normalize(body: NormalizeRequest, manager: ManagerDep, settings: SettingsDep) -> NormalizeResponse:
    synthesizer = _ready_engine(manager)
    voice = await _voice_with_transcript(manager, body.ref_name)
    speed = settings.speed if body.speed is None else body.speed
    request = SynthesisRequest(text=body.text, reference=voice.to_reference(), speed=speed)
    plan = await anyio.to_thread.run_sync(synthesizer.plan, request)
    return NormalizeResponse.from_plan(
        plan, voice_id=voice.id, speed=speed, cross_fade_seconds=settings.cross_fade_seconds
    )


def _ready_engine(manager: JobManager) -> Synthesizer:
    synthesizer = manager.synthesizer
    if synthesizer is not None:
        return synthesizer
    if manager.engine_status == ENGINE_FAILED:
        raise ServiceUnavailableError("the synthesis engine failed to load; see /health")
    raise ServiceUnavailableError(
        "the model is still loading; try again shortly", retry_after_seconds=LOADING_RETRY_SECONDS
    )


async def _voice_with_transcript(manager: JobManager, ref_name: str) -> Voice:
    """The voice, transcribed first (in the engine's turn, as a job would) if it has no transcript."""
    voice: Voice = await anyio.to_thread.run_sync(manager.voices.resolve, ref_name)
    if voice.transcript is None:
        voice = await manager.run_on_engine(functools.partial(manager.voices.ensure_transcript, voice))
    return voice
