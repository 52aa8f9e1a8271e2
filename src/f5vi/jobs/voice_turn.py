"""The one home of "give the request's voices their transcripts in the engine's turn, then plan".

A voice uploaded without a transcript is transcribed (PhoWhisper) the first time a request needs
it. That is model work, so it runs in the engine's turn — between two ODE steps of whatever else
runs (:meth:`~f5vi.jobs.scheduler.EngineScheduler.run_call`), never beside a step and never behind
the whole queue — and it is dropped if the caller has gone before it started (``cancel``, or the
caller's task cancelled). Jobs (:mod:`f5vi.jobs.runner`), streams (:mod:`f5vi.jobs.streaming`),
``POST /normalize`` and the CLI all come here, so none of them can do it differently.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import anyio.to_thread

from f5vi.engine.types import CancelToken, SynthesisRequest
from f5vi.jobs.requests import VoiceResolver, needs_transcripts, with_transcripts

if TYPE_CHECKING:
    from f5vi.engine.planning import TextPlan
    from f5vi.engine.synthesizer import Synthesizer
    from f5vi.jobs.scheduler import EngineScheduler


async def with_voices_ready(
    request: SynthesisRequest,
    voices: VoiceResolver,
    scheduler: EngineScheduler | None,
    *,
    cancel: CancelToken | None = None,
) -> SynthesisRequest:
    """``request`` with a transcript for every voice (its own and the tagged ones).

    Missing ones are transcribed in the engine's turn of ``scheduler``; with no scheduler (the CLI,
    where nothing else uses the model) at once in a worker thread.
    """
    if not needs_transcripts(request):
        return request
    work = functools.partial(with_transcripts, request, voices)
    if scheduler is None:
        return await anyio.to_thread.run_sync(work)
    return await scheduler.run_call(work, cancel=cancel)


async def plan_with_voices(
    request: SynthesisRequest,
    voices: VoiceResolver,
    scheduler: EngineScheduler | None,
    synthesizer: Synthesizer,
) -> TextPlan:
    """:func:`with_voices_ready`, then the plan every synthesis of ``request`` would use.

    With a scheduler, a bounded number of previews are planned at once
    (:meth:`~f5vi.jobs.scheduler.EngineScheduler.preview_slot`: 429 beyond).
    """
    if scheduler is None:
        request = await with_voices_ready(request, voices, None)
        return await anyio.to_thread.run_sync(synthesizer.plan, request)
    async with scheduler.preview_slot():
        request = await with_voices_ready(request, voices, scheduler)
        return await anyio.to_thread.run_sync(synthesizer.plan, request)
