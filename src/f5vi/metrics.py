"""Prometheus metrics of one app instance (``GET /metrics``).

Each :class:`Metrics` owns its own ``CollectorRegistry`` (never the global default one), so several
apps in one process (tests) do not collide. Values come from three places:

- read at scrape time (:meth:`Metrics.refresh`): jobs per state from the job database, queue depth,
  engine state, GPU memory;
- a watcher of the job manager's events (:meth:`Metrics.watch`): finished jobs, their synthesis
  time and real-time factor;
- the streaming code: streams, synthesis time, RTF and first-chunk latency.

Names (all prefixed ``f5vi_``): ``jobs{state}``, ``jobs_finished_total{state}``, ``queue_depth``,
``engine_busy``, ``engine_ready``, ``streams_active``, ``streams_total{endpoint,outcome}``,
``synthesis_seconds{kind}`` (histogram), ``rtf{kind}`` (histogram), ``audio_seconds_total{kind}``,
``first_chunk_latency_seconds{endpoint}`` (histogram), ``gpu_available``,
``gpu_memory_bytes{type}`` (allocated, reserved, max_allocated, total; CUDA only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from f5vi.jobs.scheduler import EngineStatus
from f5vi.jobs.states import JobState

if TYPE_CHECKING:
    from f5vi.jobs.manager import JobManager
    from f5vi.jobs.models import Job

logger = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0)
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.jobs = Gauge("f5vi_jobs", "Jobs in the job database, by state.", ["state"], registry=r)
        self.jobs_finished = Counter(
            "f5vi_jobs_finished", "Jobs that reached a final state in this process.", ["state"], registry=r
        )
        self.queue_depth = Gauge(
            "f5vi_queue_depth", "Work items (jobs and streams) waiting for the engine.", registry=r
        )
        self.engine_busy = Gauge("f5vi_engine_busy", "1 while the engine runs a job or stream.", registry=r)
        self.engine_ready = Gauge("f5vi_engine_ready", "1 once the model is loaded.", registry=r)
        self.streams_active = Gauge(
            "f5vi_streams_active", "Streaming requests queued or running.", registry=r
        )
        self.streams = Counter(
            "f5vi_streams", "Streaming requests by endpoint and outcome.", ["endpoint", "outcome"], registry=r
        )
        self.synthesis_seconds = Histogram(
            "f5vi_synthesis_seconds",
            "Engine wall time of one synthesis (job or stream).",
            ["kind"],
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.rtf = Histogram(
            "f5vi_rtf",
            "Real-time factor: synthesis seconds / seconds of audio produced (lower is faster).",
            ["kind"],
            buckets=RTF_BUCKETS,
            registry=r,
        )
        self.audio_seconds = Counter("f5vi_audio_seconds", "Seconds of audio produced.", ["kind"], registry=r)
        self.first_chunk_latency = Histogram(
            "f5vi_first_chunk_latency_seconds",
            "Streaming: from the request to the first audio bytes handed to the client.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.gpu_available = Gauge("f5vi_gpu_available", "1 if the engine runs on a CUDA GPU.", registry=r)
        self.gpu_memory = Gauge(
            "f5vi_gpu_memory_bytes",
            "CUDA memory of the engine's device (allocated, reserved, max_allocated, total).",
            ["type"],
            registry=r,
        )
        for state in JobState:
            self.jobs.labels(state.value)
        self._seen_final: set[str] = set()

    # ------------------------------------------------------------------ recording
    def observe_synthesis(self, kind: str, seconds: float, audio_seconds: float) -> None:
        if seconds <= 0:
            return
        self.synthesis_seconds.labels(kind).observe(seconds)
        if audio_seconds > 0:
            self.audio_seconds.labels(kind).inc(audio_seconds)
            self.rtf.labels(kind).observe(seconds / audio_seconds)

    # StreamObserver (f5vi.jobs.streaming): the job system reports streams through these two
    def streams_open(self, count: int) -> None:
        self.streams_active.set(count)

    def stream_finished(self, endpoint: str, outcome: str, seconds: float, audio_seconds: float) -> None:
        self.streams.labels(endpoint, outcome).inc()
        if outcome == "completed":
            self.observe_synthesis("stream", seconds, audio_seconds)

    def observe_job(self, job: Job) -> None:
        """Count a job that reached a final state (once per job id)."""
        if not job.is_terminal or job.id in self._seen_final:
            return
        self._seen_final.add(job.id)
        if len(self._seen_final) > 10_000:  # bounded memory; a repeat only double-counts a replay
            self._seen_final.clear()
            self._seen_final.add(job.id)
        self.jobs_finished.labels(job.state.value).inc()
        result = job.result
        if job.state is JobState.SUCCEEDED and result is not None:
            seconds = float(result.timings.get("total_seconds", result.processing_time_seconds))
            self.observe_synthesis("job", seconds, float(result.duration_seconds))

    # ------------------------------------------------------------------ scrape
    async def refresh(self, manager: JobManager) -> None:
        """Values read at scrape time."""
        counts = await manager.counts()
        for state in JobState:
            self.jobs.labels(state.value).set(counts.get(state, 0))
        engine = manager.scheduler
        self.queue_depth.set(len(engine.queue))
        self.engine_busy.set(1 if engine.current is not None else 0)
        self.engine_ready.set(1 if engine.status is EngineStatus.READY else 0)
        synth = engine.synthesizer
        on_gpu = synth is not None and synth.device.type == "cuda"
        self.gpu_available.set(1 if on_gpu else 0)
        if on_gpu and synth is not None:
            stats = synth.memory_stats()
            for key in ("allocated", "reserved", "max_allocated", "total"):
                value = stats.get(f"{key}_bytes")
                if value is not None:
                    self.gpu_memory.labels(key).set(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # ------------------------------------------------------------------ job watcher
    def watch(self, manager: JobManager) -> asyncio.Task[None]:
        """Start a task recording finished jobs from the manager's events; cancel it to stop."""
        return asyncio.create_task(self._watch(manager), name="f5vi-metrics")

    async def _watch(self, manager: JobManager) -> None:
        with manager.subscribe(None) as subscription:
            while True:
                job = await subscription.get()
                with contextlib.suppress(Exception):
                    self.observe_job(job)
