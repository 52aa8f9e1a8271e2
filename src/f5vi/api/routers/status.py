"""GET /status: engine, device and GPU memory, queue depth and the running job."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends

from f5vi import __version__
from f5vi.api.auth import bearer_scheme
from f5vi.api.deps import ManagerDep, SchedulerDep
from f5vi.api.responses import error_responses
from f5vi.api.routers.health import model_info
from f5vi.api.schemas import CurrentJobInfo, StatusResponse

router = APIRouter(tags=["status"], dependencies=[Depends(bearer_scheme)])

_MB = 1024.0 * 1024.0


@router.get(
    "/status", response_model=StatusResponse, summary="Engine and queue status", responses=error_responses()
)
async def status(manager: ManagerDep, scheduler: SchedulerDep) -> StatusResponse:
    synth = scheduler.synthesizer
    memory: dict[str, float] = {}
    if synth is not None:
        try:
            memory = synth.memory_stats()
        except Exception:  # a status page must not fail because a counter did
            memory = {}
    current_work = scheduler.current
    job = manager.current_job
    current = None
    if job is not None and current_work is not None:
        current = CurrentJobInfo(
            job_id=job.id,
            stage=job.stage,
            progress=round(job.progress, 1),
            chunk_index=job.chunk_index,
            chunk_count=job.chunk_count,
            eta_seconds=job.eta_seconds,
            running_seconds=round(time.monotonic() - current_work.started_monotonic, 2),
        )
    counts = await manager.counts()
    device = synth.info.device if synth is not None else None

    def mb(key: str) -> float | None:
        return round(memory[key] / _MB, 1) if key in memory else None

    return StatusResponse(
        api_version=__version__,
        engine_status=scheduler.status.value,
        model_loaded=synth is not None,
        model=model_info(scheduler),
        busy=current_work is not None,
        current_job=current.job_id if current else None,
        job_duration=current.running_seconds if current else None,
        current=current,
        queue_depth=len(scheduler.queue),
        queue_max=scheduler.queue.maxsize,
        jobs={state.value: n for state, n in counts.items()},
        device=device,
        gpu_available=bool(device and device.startswith("cuda")),
        gpu_memory_allocated_mb=mb("allocated_bytes"),
        gpu_memory_reserved_mb=mb("reserved_bytes"),
        gpu_memory_total_mb=mb("total_bytes"),
    )
