"""``POST /normalize``: the text exactly as the model will read it, per chunk, before any synthesis.

The route checks and completes the request with the same builder as ``POST /tts``
(:mod:`f5vi.jobs.requests`) and plans it through :meth:`~f5vi.engine.synthesizer.Synthesizer.plan`,
the function every synthesis plans with, so the preview and a job with the same text cannot differ. It
runs no model and does not queue: planning takes no engine lock (only a voice without a transcript
is transcribed in the engine's turn, between two ODE steps, as its first job would be).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from f5vi.api.auth import bearer_scheme
from f5vi.api.deps import EngineDep, ManagerDep
from f5vi.api.disconnect import unless_disconnected
from f5vi.api.responses import error_responses
from f5vi.api.schemas import NormalizeRequest, NormalizeResponse
from f5vi.jobs.requests import TTSInput
from f5vi.jobs.voice_turn import plan_with_voices

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
        "Takes the body of `POST /tts`; queues nothing."
    ),
    responses=error_responses(400, 404, 413, 422, 429, 503),
)
async def normalize(
    body: NormalizeRequest, request: Request, engine: EngineDep, manager: ManagerDep
) -> NormalizeResponse | Response:
    synthesizer = engine.require_ready()
    prepared = await manager.requests.prepare(
        TTSInput(text=body.text, ref_name=body.ref_name, speed=body.speed)
    )
    # A voice without a transcript is transcribed in the engine's turn (between ODE steps), as its
    # first job would be; a client that leaves before that drops it.
    plan = await unless_disconnected(
        request, plan_with_voices(prepared.synthesis, manager.voices, engine, synthesizer)
    )
    if plan is None:
        return Response(status_code=204)  # the client left; nobody reads this
    return NormalizeResponse.from_plan(
        plan,
        voice_id=prepared.voice.id,
        speed=prepared.request.speed,
        cross_fade_seconds=prepared.request.cross_fade_seconds,
    )
