"""POST /tts (submit), GET /tts/progress/{job_id}, POST /tts/kill/{job_id}."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Depends, Response, status

from f5vi.api.auth import bearer_scheme
from f5vi.api.deps import BaseUrlDep, ManagerDep, SettingsDep, VoicesDep
from f5vi.api.params import JobIdPath
from f5vi.api.responses import error_responses
from f5vi.api.schemas import JobView, KillResponse, TTSAccepted
from f5vi.api.views import job_view
from f5vi.jobs.errors import UnknownJobError
from f5vi.jobs.links import check_url, confirmation_url
from f5vi.jobs.requests import TTSRequest
from f5vi.jobs.states import JobState
from f5vi.voices.errors import VoiceLibraryError
from f5vi.voices.library import VoiceLibrary

router = APIRouter(tags=["tts"], dependencies=[Depends(bearer_scheme)])


@router.post(
    "/tts",
    response_model=TTSAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Submit a synthesis job",
    description=(
        "Queues the job and answers at once (202). Poll `progress_url` until `state` is `succeeded` "
        '(seed clients: `progress == 100 and status == "completed"`), then download `wav_url`.'
    ),
    responses=error_responses(400, 404, 409, 413, 422, 429, 503, 507),
)
async def submit_tts(
    body: TTSRequest, manager: ManagerDep, voices: VoicesDep, settings: SettingsDep, base_url: BaseUrlDep
) -> TTSAccepted:
    job, created = await manager.submit_or_get(body.to_input(), job_id=body.job_id)
    view = job_view(job, manager, settings, base_url)
    if job.result is not None:
        text_ref: str | None = job.result.reference_text
    else:
        text_ref = await _voice_transcript(voices, job.request.voice_id)
    message = (
        f"Job queued. Poll {view.progress_url} for status"
        if created
        else "Job already exists with the same request; returning it"
    )
    return TTSAccepted(
        **view.model_dump(),
        message=message,
        text_ref=text_ref,
        confirmation_url=confirmation_url(base_url, job),
        check_url=check_url(base_url, job.id),
        replayed=not created,
    )


async def _voice_transcript(voices: VoiceLibrary, voice_id: str) -> str | None:
    try:
        voice = await anyio.to_thread.run_sync(voices.resolve, voice_id)
    except VoiceLibraryError:
        return None
    return getattr(voice, "transcript", None)


@router.get(
    "/tts/progress/{job_id}",
    response_model=JobView,
    summary="Progress and result of a job",
    responses=error_responses(404, 422),
)
async def get_progress(
    job_id: JobIdPath, manager: ManagerDep, settings: SettingsDep, base_url: BaseUrlDep
) -> JobView:
    job = await manager.get(job_id)
    if job is None:
        raise UnknownJobError(job_id)
    return job_view(job, manager, settings, base_url)


@router.post(
    "/tts/kill/{job_id}",
    response_model=KillResponse,
    summary="Cancel a queued or running job",
    description="200 once cancelled; 202 if the engine is still stopping it (it will within one step).",
    responses={
        202: {"model": KillResponse, "description": "Cancel requested; the job is still stopping"},
        **error_responses(404, 409, 422),
    },
)
async def kill_job(
    job_id: JobIdPath, manager: ManagerDep, settings: SettingsDep, base_url: BaseUrlDep, response: Response
) -> KillResponse:
    job = await manager.cancel(job_id)
    view = job_view(job, manager, settings, base_url)
    if job.state is JobState.CANCELLED:
        return KillResponse(status="cancelled", job_id=job.id, message="Job cancelled.", job=view)
    response.status_code = status.HTTP_202_ACCEPTED
    return KillResponse(
        status="cancelling",
        job_id=job.id,
        message="Cancel requested; the job stops within one step.",
        job=view,
    )
