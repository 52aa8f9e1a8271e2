"""POST /cleanup: free cached engine memory and run output retention now."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from f5vi.api.auth import bearer_scheme
from f5vi.api.deps import ManagerDep, SchedulerDep
from f5vi.api.responses import error_responses
from f5vi.api.schemas import CleanupResponse

router = APIRouter(tags=["admin"], dependencies=[Depends(bearer_scheme)])


@router.post(
    "/cleanup",
    response_model=CleanupResponse,
    summary="Free cached engine memory; remove expired outputs",
    description=(
        "Memory is freed in the engine's turn, never beside a running synthesis: when the engine is idle "
        "it happens now (200, `memory` after cleanup); otherwise it is scheduled after the queued work "
        "(202). With the queue full there is no room to schedule it: 429 with Retry-After (expired outputs "
        "are removed all the same)."
    ),
    responses={
        202: {"model": CleanupResponse, "description": "Scheduled after the running job"},
        **error_responses(429, 503),
    },
)
async def cleanup(manager: ManagerDep, scheduler: SchedulerDep, response: Response) -> CleanupResponse:
    removed = await manager.cleanup_outputs()
    synth = scheduler.synthesizer
    if synth is None:
        return CleanupResponse(status="cleaned", memory=None, outputs_removed=removed)
    if scheduler.current is None and len(scheduler.queue) == 0:
        memory = await scheduler.run_call(synth.free_memory)
        return CleanupResponse(status="cleaned", memory=memory, outputs_removed=removed)
    scheduler.schedule_call(synth.free_memory)
    response.status_code = status.HTTP_202_ACCEPTED
    return CleanupResponse(status="scheduled", memory=None, outputs_removed=removed)
