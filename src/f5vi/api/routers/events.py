"""``GET /tts/progress/{job_id}/events``: a job's progress as Server-Sent Events.

The stream starts with the job's current state and sends every change after it, each as
``event: progress`` with the same JSON as ``GET /tts/progress/{job_id}`` and an increasing ``id``.
``progress`` never decreases. When the job reaches a final state (succeeded, failed, cancelled) that
snapshot is sent as ``event: done`` and the stream ends. A comment line (``: keep-alive``) is sent
every 15 s without changes, so proxies keep the connection open. A reconnecting client simply gets
the current state again. When the server shuts down (a deploy, SIGTERM) the stream ends with
``event: shutdown`` (``{"job_id", "message"}``): the job is safe on disk — a queued or interrupted job
runs after the restart — and an ``EventSource`` reconnects on its own after the ``retry`` interval.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from f5vi.api.auth import bearer_scheme
from f5vi.api.deps import BaseUrlDep, ManagerDep, RuntimeDep, SettingsDep
from f5vi.api.params import JobIdPath
from f5vi.api.responses import error_responses, sse_content
from f5vi.api.views import job_view
from f5vi.config import Settings
from f5vi.jobs.errors import UnknownJobError
from f5vi.jobs.manager import JobManager
from f5vi.jobs.models import Job
from f5vi.jobs.runtime import JobRuntime
from f5vi.jobs.states import JobState

router = APIRouter(tags=["tts"], dependencies=[Depends(bearer_scheme)])

KEEPALIVE_SECONDS = 15.0
RETRY_MILLISECONDS = 2000
SHUTDOWN_MESSAGE = (
    "the server is restarting; the job is kept and runs after the restart - reconnect to follow it"
)

SSE_CONTENT = sse_content(
    "One Server-Sent Event (UTF-8). The stream starts with `retry: 2000`; then for every change of the job "
    "an event `progress` with `id` 1, 2, ... and the job as `data` (as `GET /tts/progress/{job_id}`, one "
    "line of JSON), starting with the current state; once the job is final (succeeded, failed, cancelled) "
    "the same as event `done`, and the stream ends. A comment line `: keep-alive` comes every 15 s "
    "without changes. `progress` never decreases. When the server shuts down first, the last event is "
    "`shutdown` with `{job_id, message}`: the job is kept; reconnect after the restart.",
    {
        "anyOf": [
            {"$ref": "#/components/schemas/JobView"},
            {
                "type": "object",
                "required": ["job_id", "message"],
                "properties": {"job_id": {"type": "string"}, "message": {"type": "string"}},
            },
        ]
    },
    events=["progress", "done", "shutdown"],
    example=(
        f"retry: {RETRY_MILLISECONDS}\n\n"
        'event: progress\nid: 1\ndata: {"job_id":"j1","state":"running","progress":40.0,...}\n\n'
        'event: done\nid: 2\ndata: {"job_id":"j1","state":"succeeded","progress":100.0,...}\n\n'
    ),
)


@router.get(
    "/tts/progress/{job_id}/events",
    summary="Progress of a job as Server-Sent Events",
    description=(
        "`event: progress` with the job (as `GET /tts/progress/{job_id}`) at every change, starting with the "
        "current state; `event: done` with the final state, then the stream ends."
    ),
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An SSE stream of job snapshots (see the schema's description)",
            "content": SSE_CONTENT,
        },
        **error_responses(404, 422),
    },
)
async def job_events(
    job_id: JobIdPath, manager: ManagerDep, settings: SettingsDep, base_url: BaseUrlDep, runtime: RuntimeDep
) -> StreamingResponse:
    job = await manager.get(job_id)
    if job is None:
        raise UnknownJobError(job_id)
    return StreamingResponse(
        _events(job, manager, settings, base_url, runtime),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _rank(state: JobState) -> int:
    """Order of states in a job's life (a re-queue after a restart goes back, which is fine)."""
    return {JobState.QUEUED: 0, JobState.RUNNING: 1}.get(state, 2)


def _shutdown_event(job_id: str) -> bytes:
    payload = {"job_id": job_id, "message": SHUTDOWN_MESSAGE}
    return f"event: shutdown\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


async def _events(
    first: Job, manager: JobManager, settings: Settings, base_url: str, runtime: JobRuntime
) -> AsyncIterator[bytes]:
    async with runtime.connection() as stopping:
        async for chunk in _job_events(first, manager, settings, base_url, stopping):
            yield chunk


async def _job_events(
    first: Job, manager: JobManager, settings: Settings, base_url: str, stopping: asyncio.Event
) -> AsyncIterator[bytes]:
    seq = 0
    last_progress = -1.0
    last_rank = -1
    last_key: tuple[object, ...] | None = None

    def render(job: Job) -> bytes | None:
        nonlocal seq, last_progress, last_key, last_rank
        if _rank(job.state) < last_rank:
            return None  # an update older than one already sent (queued while we read the job)
        last_rank = _rank(job.state)
        view = job_view(job, manager, settings, base_url)
        progress = max(view.progress, last_progress)  # never step back, whatever the source
        view = view.model_copy(update={"progress": progress})
        key = (view.state, view.progress, view.stage, view.chunk_index, view.chunk_count, view.queue_position)
        if key == last_key and not job.is_terminal:
            return None
        last_key, last_progress = key, progress
        seq += 1
        event = "done" if job.is_terminal else "progress"
        payload = json.dumps(view.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))
        return f"event: {event}\nid: {seq}\ndata: {payload}\n\n".encode()

    yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
    async for job in manager.follow(first.id, idle_seconds=KEEPALIVE_SECONDS, stop=stopping):
        if job is None:
            yield b": keep-alive\n\n"
            continue
        chunk = render(job)
        if chunk is not None:
            yield chunk
        if job.is_terminal:
            return
    yield _shutdown_event(first.id)  # follow() ends without a final state only when the server stops
