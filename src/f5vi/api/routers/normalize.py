"""``POST /normalize``: the text exactly as the model will read it, per chunk, before any synthesis.

The route checks and completes the request with the same builder as ``POST /tts``
(:mod:`f5vi.jobs.requests`) and plans it through :meth:`~f5vi.engine.synthesizer.Synthesizer.plan`,
the function every synthesis plans with, so the preview and a job with the same text cannot differ. It
runs no model and does not queue: planning takes no engine lock (only a voice without a transcript
is transcribed in the engine's turn, between two ODE steps, as its first job would be).
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Depends, Request, Response

from f5vi.api.auth import bearer_scheme
from f5vi.api.deps import RequestsDep, SchedulerDep, SettingsDep, VoicesDep
from f5vi.api.disconnect import unless_disconnected
from f5vi.api.responses import error_responses
from f5vi.api.schemas import NormalizeRequest, NormalizeResponse
from f5vi.api.text_schemas import LexiconResponse
from f5vi.jobs.requests import TTSInput
from f5vi.jobs.voice_turn import plan_with_voices

router = APIRouter(tags=["tts"], dependencies=[Depends(bearer_scheme)])


@router.get(
    "/lexicon",
    response_model=LexiconResponse,
    summary="The server's lexicon",
    description=(
        "The respellings of the files in `F5VI_LEXICON_PATHS` (the lowest precedence: a voice's "
        "`<voice>.lexicon` and a request's `lexicon` win). Managing them is a file operation and a restart; "
        "the format is in docs/text.md."
    ),
    responses=error_responses(),
)
async def lexicon(requests: RequestsDep) -> LexiconResponse:
    return LexiconResponse.of(requests.server_lexicon)


@router.post(
    "/normalize",
    response_model=NormalizeResponse,
    summary="Preview the normalised text, its chunks and the duration",
    description=(
        "Numbers, dates, money and abbreviations written as the model will read them, split into the "
        "chunks synthesis will use for this voice and speed, with upstream's duration estimate and "
        "warnings (characters the vocabulary lacks, unreadable symbols, a fallback normaliser). "
        "A text with `[voice_id]` tags shows each chunk's voice and each voice's part (`segments`); SSML "
        "shows each part's speed and the pause before it; `lexicon_hits` says which respellings fired "
        "where (character spans of the submitted text). "
        "Takes the body of `POST /tts`; without `ref_name`, the default voice (`F5VI_DEFAULT_VOICE`, "
        "else the first voice). Queues nothing."
    ),
    responses=error_responses(400, 404, 413, 422, 429, 503),
)
async def normalize(
    body: NormalizeRequest,
    request: Request,
    scheduler: SchedulerDep,
    requests: RequestsDep,
    voices: VoicesDep,
    settings: SettingsDep,
) -> NormalizeResponse | Response:
    synthesizer = scheduler.require_ready()
    ref_name = body.ref_name
    if ref_name is None:
        ref_name = await anyio.to_thread.run_sync(voices.default_voice_id, settings.default_voice)
    prepared = await requests.prepare(
        TTSInput(
            text=body.text,
            ref_name=ref_name,
            speed=body.speed,
            text_type=body.text_type,
            lexicon=body.lexicon_tuple(),
        )
    )
    # A voice without a transcript is transcribed in the engine's turn (between ODE steps), as its
    # first job would be; a client that leaves before that drops it.
    plan = await unless_disconnected(
        request, plan_with_voices(prepared.synthesis, voices, scheduler, synthesizer)
    )
    if plan is None:
        return Response(status_code=204)  # the client left; nobody reads this
    return NormalizeResponse.from_plan(
        plan,
        voice_id=prepared.voice.id,
        speed=prepared.request.speed,
        cross_fade_seconds=prepared.request.cross_fade_seconds,
    )
