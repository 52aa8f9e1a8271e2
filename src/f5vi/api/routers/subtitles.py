"""GET /tts/{job_id}/subtitles: a finished job's subtitles (SRT, WebVTT or JSON cues).

Protected like the download: the API key, or the job's own ``token`` from its ``subtitle_urls``
(a wrong token: 403, and nothing is said about the job). The cues show the text as submitted
(:mod:`f5vi.jobs.subtitles`).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from f5vi.api.auth import TOKEN_AUTH_STATE, bearer_scheme, download_token_scheme
from f5vi.api.deps import ManagerDep
from f5vi.api.errors import ApiError
from f5vi.api.params import JobIdPath
from f5vi.api.responses import error_responses
from f5vi.jobs.states import JobState
from f5vi.jobs.subtitles import MEDIA_TYPES, render

router = APIRouter(tags=["tts"], dependencies=[Depends(bearer_scheme), Depends(download_token_scheme)])

_EXAMPLE_SRT = "1\n00:00:00,000 --> 00:00:02,480\nNăm 2024, TP.HCM có 10 triệu dân.\n"


@router.get(
    "/tts/{job_id}/subtitles",
    summary="Subtitles of a finished job",
    description=(
        "Cues of at most 2 lines of 42 characters, 1-7 s each, cut at punctuation, never inside a word, "
        "showing the submitted text. `format=json` gives the cues with their character offsets; the job "
        "result's `timestamps` hold the sentence and word times."
    ),
    response_class=Response,
    responses={
        200: {
            "description": "The subtitles.",
            "content": {
                "application/x-subrip": {"schema": {"type": "string"}, "example": _EXAMPLE_SRT},
                "text/vtt": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}},
            },
        },
        **error_responses(403, 404, 422),
    },
)
async def get_subtitles(
    job_id: JobIdPath,
    request: Request,
    manager: ManagerDep,
    format: Annotated[Literal["srt", "vtt", "json"], Query(description="srt, vtt or json.")] = "srt",
    token: Annotated[
        str | None, Query(max_length=200, description="The job's secret from its `subtitle_urls`.")
    ] = None,
) -> Response:
    job = await manager.get(job_id)
    if getattr(request.state, TOKEN_AUTH_STATE, False) and (
        job is None or not hmac.compare_digest((token or "").encode(), job.confirm_token.encode())
    ):
        raise ApiError(403, "invalid_token", "the download token does not match this job")
    if job is None:
        raise ApiError(404, "job_not_found", f"no job with id {job_id!r}")
    if job.state is not JobState.SUCCEEDED or job.result is None:
        raise ApiError(
            404, "output_not_ready", f"the job is {job.state.value}; subtitles come with its result"
        )
    if job.result.timestamps is None:
        raise ApiError(
            404,
            "no_timestamps",
            "this job's result has no timestamps (it finished before they existed, or timing failed: "
            "see its warnings); submit it again",
        )
    body = render(job.request.text, job.result.timestamps, format)
    if isinstance(body, dict):
        return JSONResponse(body)
    disposition = f'inline; filename="{job.id}.{format}"'
    return Response(body, media_type=MEDIA_TYPES[format], headers={"Content-Disposition": disposition})
