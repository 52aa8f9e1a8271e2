"""``GET /v1/models`` and ``GET /v1/models/{model}``: OpenAI's model listing, so SDKs and tools that
list models before they speak (``client.models.list()``) find names ``/v1/audio/speech`` accepts."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from f5vi.api.auth import bearer_scheme
from f5vi.api.deps import SchedulerDep
from f5vi.api.errors import ApiError
from f5vi.api.openai_names import SPEECH_MODELS
from f5vi.api.responses import error_responses
from f5vi.jobs.scheduler import EngineScheduler

router = APIRouter(tags=["openai"], dependencies=[Depends(bearer_scheme)])

OWNER = "f5vi"


class OpenAIModel(BaseModel):
    """OpenAI's ``Model`` object."""

    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="Unix time this server started (the ids mean the model it serves).")
    owned_by: str = OWNER
    vocoder: Literal["vocos", "bigvgan"] | None = Field(
        None,
        description="The vocoder of the loaded model (f5vi extension; null while it loads).",
    )


class OpenAIModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


def _model(model_id: str, request: Request, scheduler: EngineScheduler) -> OpenAIModel:
    synth = scheduler.synthesizer
    kind = None if synth is None else ("bigvgan" if synth.info.vocoder_type == "bigvgan" else "vocos")
    return OpenAIModel(id=model_id, created=request.app.state.started_at, vocoder=kind)


@router.get(
    "/v1/models",
    response_model=OpenAIModelList,
    summary="List models (OpenAI-compatible)",
    description=(
        "The model ids `POST /v1/audio/speech` accepts by name: `f5-tts` (its default), `f5vi`, and "
        "OpenAI's speech models. All of them mean the one model this server loaded (`GET /health`); "
        "the speech endpoint accepts any other name too."
    ),
    responses=error_responses(),
)
async def list_models(request: Request, scheduler: SchedulerDep) -> OpenAIModelList:
    return OpenAIModelList(data=[_model(model_id, request, scheduler) for model_id in SPEECH_MODELS])


@router.get(
    "/v1/models/{model}",
    response_model=OpenAIModel,
    summary="Retrieve a model (OpenAI-compatible)",
    responses=error_responses(404, 422),
)
async def retrieve_model(model: str, request: Request, scheduler: SchedulerDep) -> OpenAIModel:
    if model not in SPEECH_MODELS:
        raise ApiError(404, "model_not_found", f"no model {model[:64]!r}; GET /v1/models lists them")
    return _model(model, request, scheduler)
