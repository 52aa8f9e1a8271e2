"""Download confirmation: the client says it has the file, so retention may remove it sooner."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from f5vi.api.auth import TOKEN_AUTH_STATE, bearer_scheme, download_token_scheme
from f5vi.api.deps import ManagerDep, SettingsDep
from f5vi.api.params import JobIdPath
from f5vi.api.responses import error_responses
from f5vi.api.schemas import CheckDownloadResponse, ConfirmResponse
from f5vi.jobs.errors import InvalidConfirmationTokenError
from f5vi.jobs.links import expires_at

router = APIRouter(tags=["downloads"], dependencies=[Depends(bearer_scheme)])
_TOKEN_OR_KEY = [Depends(download_token_scheme)]
"""The confirmation URL works with its token instead of the key (check-download needs the key)."""


@router.post(
    "/confirm-download/{job_id}",
    response_model=ConfirmResponse,
    summary="Confirm a download",
    description=(
        "POST the job's `confirmation_url` (it carries `token`). A request body, as seed clients send "
        "it, is accepted and ignored. Repeating a confirmation is harmless."
    ),
    responses=error_responses(403, 404, 409, 422),
    dependencies=_TOKEN_OR_KEY,
)
async def confirm_download(
    job_id: JobIdPath,
    request: Request,
    manager: ManagerDep,
    settings: SettingsDep,
    token: Annotated[str | None, Query(max_length=200, description="From `confirmation_url`.")] = None,
) -> ConfirmResponse:
    if getattr(request.state, TOKEN_AUTH_STATE, False) and await manager.get(job_id) is None:
        # Let in on its URL token only: without the key, an unknown job is just a token that fails.
        raise InvalidConfirmationTokenError()
    job = await manager.confirm_download(job_id, token)
    assert job.confirmed_at is not None
    return ConfirmResponse(job_id=job.id, timestamp=job.confirmed_at, expires_at=expires_at(job, settings))


@router.get(
    "/check-download/{job_id}",
    response_model=CheckDownloadResponse,
    summary="Was the download confirmed?",
    responses=error_responses(404, 422),
)
async def check_download(job_id: JobIdPath, manager: ManagerDep) -> CheckDownloadResponse:
    job = await manager.check_download(job_id)
    return CheckDownloadResponse(
        confirmed=job.confirmed_at is not None,
        job_id=job.id,
        timestamp=job.confirmed_at,
        state=job.state.value,
    )
