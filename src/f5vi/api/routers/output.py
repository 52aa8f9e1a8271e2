"""GET /output/{filename}: the audio of a finished job, with HTTP Range support.

Only names this server generated are served, and only for a job that owns them: the name must match
the storage's pattern (no paths), the job table must know it, and the storage resolves it inside its
own directory.
"""

from __future__ import annotations

import hmac
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from f5vi.api.audio_media import GENERIC_NOTE, audio_content
from f5vi.api.auth import TOKEN_AUTH_STATE, bearer_scheme, download_token_scheme
from f5vi.api.deps import ManagerDep, StorageDep
from f5vi.api.errors import ApiError
from f5vi.api.file_response import AudioFileResponse
from f5vi.api.params import OutputFilenamePath
from f5vi.api.responses import error_responses
from f5vi.formats import FORMATS
from f5vi.jobs.states import JobState
from f5vi.storage import check_filename, is_safe_filename

router = APIRouter(tags=["output"], dependencies=[Depends(bearer_scheme), Depends(download_token_scheme)])

OUTPUT_MEDIA_TYPES = tuple(dict.fromkeys(f.media_type.split(";")[0] for f in FORMATS.values()))
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
    filename: OutputFilenamePath,
    request: Request,
    manager: ManagerDep,
    storage: StorageDep,
    token: Annotated[
        str | None,
        Query(max_length=200, description="The job's secret from its download URL (instead of the API key)."),
    ] = None,
) -> Response:
    token_auth = getattr(request.state, TOKEN_AUTH_STATE, False)
    # A request let in on its URL token is authorised by the job it names: check that before saying
    # anything about the name, so a client without the key learns nothing (not even "bad name").
    job = await manager.find_by_output(filename) if is_safe_filename(filename) else None
    if token_auth and (
        job is None or not hmac.compare_digest((token or "").encode(), job.confirm_token.encode())
    ):
        raise ApiError(403, "invalid_token", "the download token does not match this file")
    check_filename(filename)
    if job is None:
        raise ApiError(404, "output_not_found", "no such output file")
    if job.output_deleted_at is not None:
        raise ApiError(410, "output_expired", "this output was removed after its retention period")
    if job.state is not JobState.SUCCEEDED or job.result is None:
        raise ApiError(404, "output_not_ready", f"the job is {job.state.value}; no output (yet)")
    result = job.result
    if result.remote_url and (result.remote_url_expires_at or 0) > time.time():
        return RedirectResponse(result.remote_url, status_code=307)
    path = storage.local_path(filename)
    if path is None:
        raise ApiError(404, "output_not_found", "no such output file")
    return AudioFileResponse(
        path, media_type=result.media_type, filename=filename, content_disposition_type="inline"
    )
