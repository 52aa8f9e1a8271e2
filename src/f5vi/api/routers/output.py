"""GET /output/{filename}: the audio of a finished job, with HTTP Range support.

Only names this server generated are served, and only for a job that owns them: the name must match
the storage's pattern (no paths), the job table must know it, and the storage resolves it inside its
own directory.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable

from f5vi.api.audio_media import GENERIC_NOTE, audio_content
from f5vi.api.auth import TOKEN_AUTH_STATE, bearer_scheme
from f5vi.api.deps import ManagerDep, StorageDep
from f5vi.api.errors import ApiError
from f5vi.api.responses import error_responses
from f5vi.engine.audio import AUDIO_FORMATS
from f5vi.jobs.states import JobState
from f5vi.storage import check_filename

router = APIRouter(tags=["output"], dependencies=[Depends(bearer_scheme)])

OUTPUT_MEDIA_TYPES = tuple(dict.fromkeys(f.media_type.split(";")[0] for f in AUDIO_FORMATS.values()))
"""What a job's output can be (one per ``format``); the response carries the job's own type."""
_AUDIO = audio_content(*OUTPUT_MEDIA_TYPES)


@router.get(
    "/output/{filename}",
    summary="Download an output file",
    response_class=FileResponse,
    responses={
        200: {"description": "The audio file." + GENERIC_NOTE, "content": _AUDIO},
        206: {"description": "Part of the file (Range request)." + GENERIC_NOTE, "content": _AUDIO},
        307: {"description": "Redirect to object storage (S3 backend)"},
        **error_responses(400, 403, 404, 410, 416, 422),
    },
)
async def get_output(
    filename: str,
    request: Request,
    manager: ManagerDep,
    storage: StorageDep,
    token: Annotated[
        str | None,
        Query(max_length=200, description="The job's secret from its download URL (instead of the API key)."),
    ] = None,
) -> Response:
    check_filename(filename)
    job = await manager.find_by_output(filename)
    if getattr(request.state, TOKEN_AUTH_STATE, False) and (
        job is None or not hmac.compare_digest((token or "").encode(), job.confirm_token.encode())
    ):
        raise ApiError(403, "invalid_token", "the download token does not match this file")
    if job is None:
        raise ApiError(404, "output_not_found", "no such output file")
    if job.output_deleted_at is not None:
        raise ApiError(410, "output_expired", "this output was removed after its retention period")
    if job.state is not JobState.SUCCEEDED or job.result is None:
        raise ApiError(404, "output_not_ready", f"the job is {job.state.value}; no output (yet)")
    remote = storage.public_url(filename)
    if remote is not None:
        return RedirectResponse(remote, status_code=307)
    path = storage.local_path(filename)
    if path is None:
        raise ApiError(404, "output_not_found", "no such output file")
    size = path.stat().st_size
    http_range = request.headers.get("range")
    if http_range is not None:
        _check_range(http_range, size)
    return FileResponse(
        path,
        media_type=job.result.media_type,
        filename=filename,
        content_disposition_type="inline",
    )


def _check_range(http_range: str, size: int) -> None:
    """Answer bad ranges in the API's error shape (Starlette's own answers are plain text)."""
    try:
        FileResponse._parse_range_header(http_range, size)
    except MalformedRangeHeader:
        raise ApiError(400, "invalid_range", "malformed Range header") from None
    except RangeNotSatisfiable:
        raise ApiError(
            416,
            "range_not_satisfiable",
            "requested range is outside the file",
            headers={"Content-Range": f"bytes */{size}"},
        ) from None
