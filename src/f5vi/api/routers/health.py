"""GET /health: liveness (it answers) and readiness (200 only once the model is loaded)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from f5vi import __version__
from f5vi.api.deps import SchedulerDep
from f5vi.api.responses import public_error_responses
from f5vi.api.schemas import HealthResponse, ModelInfo
from f5vi.jobs.scheduler import EngineScheduler, EngineStatus

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthResponse,
    summary="Liveness and readiness",
    responses={
        503: {"model": HealthResponse, "description": "Model still loading, or it failed to load"},
        **public_error_responses(),
    },
)
async def health(scheduler: SchedulerDep, response: Response) -> HealthResponse:
    synth = scheduler.synthesizer
    model = model_info(scheduler)
    if scheduler.status is EngineStatus.READY and synth is not None:
        status = "healthy"
    elif scheduler.status is EngineStatus.FAILED:
        status = "unhealthy"
    else:
        status = "loading"
    if status != "healthy":
        response.status_code = 503
    return HealthResponse(
        status=status,
        ready=status == "healthy",
        version=__version__,
        model=model,
        is_demo=model.is_demo if model else None,
        error=scheduler.error,
    )


def model_info(scheduler: EngineScheduler) -> ModelInfo | None:
    synth = scheduler.synthesizer
    if synth is None:
        return None
    info = synth.info
    return ModelInfo(
        model=_display_source(info.model),
        arch=info.arch,
        is_demo=info.is_demo,
        device=info.device,
        dtype=info.dtype,
        sample_rate=info.sample_rate,
        vocoder=_display_source(info.vocoder),
        vocoder_type="bigvgan" if info.vocoder_type == "bigvgan" else "vocos",
        num_params=getattr(info, "num_params", None),
    )


def _display_source(source: str) -> str:
    """Hub ids as they are; local paths as their last component (no server layout in responses)."""
    from pathlib import PurePosixPath

    return PurePosixPath(source).name if source.startswith("/") else source
