"""RunPod serverless worker: RunPod jobs drive the same job system as the HTTP API.

``python -m f5vi.runpod.handler`` loads the engine once, before ``runpod.serverless.start``: a worker
whose model does not load exits non-zero (4) with a message on stderr instead of taking jobs it
cannot run. The job system is hosted in this process (:mod:`f5vi.runpod.worker`); this module speaks
the RunPod job protocol: validate the input, submit (or find) the job, forward progress, and return
the output (:mod:`f5vi.runpod.delivery`) or a typed error.

Idempotency: every RunPod job is submitted with the idempotency key ``runpod:<RunPod job id>`` and,
when the client sent one, its ``job_id`` as the f5vi job id; both are unique in the job table on
disk. A redelivered job (same RunPod id, or the same client ``job_id`` with the same request) finds
the existing job, waits for it if it is still running and returns the stored result: the engine does
not run again, also after a worker restart with the same data directory.

Delivery: the result is durable before the handler returns (the output file is fsynced; with a
bucket configured it is also uploaded and the presigned URL is returned). Small results also travel
inline as ``audio_base64``. The job is never held IN_PROGRESS waiting for a download confirmation;
see ``docs/runpod.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from f5vi.config import Settings
from f5vi.errors import as_f5vi_error, scrub
from f5vi.jobs.models import Job
from f5vi.jobs.requests import TTSInput, TTSRequest
from f5vi.jobs.states import JobState
from f5vi.logging_setup import configure_logging
from f5vi.runpod.delivery import Delivery, migrate
from f5vi.runpod.protocol import JobFailedError, error_output, idempotency_key, invalid_input
from f5vi.runpod.worker import EXIT_CONFIG_ERROR, EXIT_MODEL_LOAD_FAILED, StartupError, WorkerHost
from f5vi.storage import StorageConfigError, bucket_settings

if TYPE_CHECKING:
    from f5vi.engine.synthesizer import Synthesizer
    from f5vi.jobs.manager import JobManager

logger = logging.getLogger("f5vi.runpod")

__all__ = ["EXIT_CONFIG_ERROR", "EXIT_MODEL_LOAD_FAILED", "RunPodWorker", "StartupError", "main"]

PROGRESS_MIN_INTERVAL_SECONDS = 1.0
PROGRESS_MIN_STEP = 5.0
CANCEL_WAIT_SECONDS = 5.0
DEFAULT_GPU_CONCURRENCY = 8
"""Jobs a GPU worker takes at once when not configured: they share ODE batches. Not yet measured on a
GPU (bench/RESULTS.md says what was); the engine's own concurrency (16 on GPU) stays above it."""

ProgressSink = Callable[[Mapping[str, Any], dict[str, Any]], None]


def sdk_progress_sink(settings: Settings) -> ProgressSink:
    """``runpod.serverless.progress_update`` where it has somewhere to go.

    The SDK posts progress to ``RUNPOD_WEBHOOK_POST_OUTPUT``; outside RunPod that is unset and every
    call would only log "Failed to return job results", so progress is logged instead.
    """

    def sink(job: Mapping[str, Any], payload: dict[str, Any]) -> None:
        if settings.runpod_progress_url:
            from runpod.serverless import progress_update

            progress_update(dict(job), payload)
        else:
            logger.debug("progress %s: %s", job.get("id"), payload)

    return sink


class RunPodWorker:
    """Everything one worker process holds. :meth:`start` once, then :meth:`handler` per job."""

    def __init__(
        self,
        settings: Settings,
        *,
        synthesizer: Synthesizer | None = None,
        engine_loader: Callable[[Settings], Synthesizer] | None = None,
        serve_http: bool | None = None,
        progress_sink: ProgressSink | None = None,
    ) -> None:
        self.settings = settings
        self._synthesizer = synthesizer
        self._engine_loader = engine_loader
        self.serve_http = settings.runpod_serve_http if serve_http is None else serve_http
        self._progress_sink = progress_sink or sdk_progress_sink(settings)
        self._host: WorkerHost | None = None
        self._delivery: Delivery | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # -------------------------------------------------------------------- lifecycle
    @property
    def use_s3(self) -> bool:
        return bool(self.settings.s3_bucket or self.settings.s3_endpoint_url)

    @property
    def manager(self) -> JobManager:
        if self._host is None:
            raise RuntimeError("the worker is not started")
        return self._host.manager

    def start(self) -> None:
        """Check the configuration, load the engine, start the job system. Raises :class:`StartupError`."""
        settings = self.settings
        try:
            bucket_settings(settings)
        except StorageConfigError as exc:
            raise StartupError(exc.message, EXIT_CONFIG_ERROR) from exc
        try:
            settings.ensure_dirs()
        except OSError as exc:
            raise StartupError(
                f"cannot create the data/output directories: {exc}", EXIT_CONFIG_ERROR
            ) from exc
        synth = self._synthesizer or self._load_engine()
        self._synthesizer = synth
        host = WorkerHost(settings, synth, serve_http=self.serve_http)
        host.start()
        self._host = host
        self._delivery = Delivery(settings, host.manager, host.runtime.storage, demo=synth.info.is_demo)
        host.submit(migrate(host.manager, settings.data_dir)).result(timeout=60)
        logger.info(
            "RunPod worker ready: model=%s%s, results via %s, http=%s, webhook=%s",
            synth.info.model,
            " (DEMO: noise)" if synth.info.is_demo else "",
            "S3 bucket" if self.use_s3 else self._delivery.base_url,
            f"{settings.host}:{settings.port}" if self.serve_http else "off",
            "on" if settings.webhook_url else "off",
        )
        logger.info("taking up to %d RunPod job(s) at once", self.concurrency)

    def _load_engine(self) -> Synthesizer:
        settings = self.settings
        started = time.perf_counter()
        try:
            if self._engine_loader is not None:
                synth = self._engine_loader(settings)
            else:
                from f5vi.engine.loading import load_synthesizer

                synth = load_synthesizer(settings, demo_fallback=settings.demo_fallback)
        except Exception as exc:
            detail = getattr(exc, "message", None) or str(exc)
            raise StartupError(
                f"the model failed to load (F5VI_MODEL={settings.model}, F5VI_VOCODER={settings.vocoder}): "
                f"{type(exc).__name__}: {scrub(detail)}; the worker will not accept jobs",
                EXIT_MODEL_LOAD_FAILED,
            ) from exc
        logger.info("engine loaded once for this worker in %.1f s", time.perf_counter() - started)
        return synth

    @property
    def concurrency(self) -> int:
        """RunPod jobs this worker takes at once: ``F5VI_RUNPOD_CONCURRENCY``, else by device."""
        configured = self.settings.runpod_concurrency
        if configured is not None:
            return configured
        device = self._synthesizer.device.type if self._synthesizer is not None else "cpu"
        return DEFAULT_GPU_CONCURRENCY if device == "cuda" else 1

    def concurrency_modifier(self, current: int) -> int:
        """The SDK asks before taking jobs; the answer does not change while the worker runs."""
        return self.concurrency

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving, interrupt the running job (it stays queued on disk), close the store."""
        if self._host is not None:
            self._host.stop(timeout)
            self._host = None

    def get_job(self, job_id: str, timeout: float = 10.0) -> Job | None:
        """The job's latest state, from any thread (the job system lives on its own loop)."""
        if self._host is None:
            raise RuntimeError("the worker is not started")
        return self._host.submit(self.manager.get(job_id)).result(timeout)

    # -------------------------------------------------------------------- the RunPod handler
    async def handler(self, job: dict[str, Any]) -> dict[str, Any]:
        """RunPod entry point (``async``: the SDK awaits it and can cancel it)."""
        if self._host is None or not self._host.running:
            return error_output("service_unavailable", "the worker is not started")
        future = self._host.submit(self._process(job))
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()  # cancels _process on the f5vi loop, which cancels the f5vi job
            raise

    async def _process(self, rp_job: Mapping[str, Any]) -> dict[str, Any]:
        """Runs on the f5vi loop: validate, submit or find, wait with progress, deliver."""
        rp_id = str(rp_job.get("id") or "")
        try:
            request, client_job_id = _parse_input(rp_job.get("input"))
            job = await self._submit_and_wait(rp_job, request, client_job_id, idempotency_key(rp_id))
            assert self._delivery is not None
            return await self._delivery.output(rp_job, job)
        except JobFailedError as failure:
            logger.warning("RunPod job %s failed: %s: %s", rp_id, failure.code, failure.message)
            return failure.output()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return _error_output(rp_id, exc)

    async def _submit_and_wait(
        self, rp_job: Mapping[str, Any], request: TTSInput, client_job_id: str | None, key: str | None
    ) -> Job:
        manager = self.manager
        job, created = await manager.submit_or_get(request, job_id=client_job_id, idempotency_key=key)
        if not created:
            logger.info(
                "RunPod job %s: f5vi job %s already exists (%s); not synthesising again",
                rp_job.get("id"),
                job.id,
                job.state.value,
            )
        reporter = ProgressReporter(rp_job, self._progress_sink)
        timeout = self.settings.runpod_job_timeout_seconds
        try:
            current = job
            async with asyncio.timeout(timeout):
                async for update in manager.follow(job.id):
                    current = update or current
                    if not current.is_terminal:
                        reporter.report(current, manager.queue_position(current.id))
        except TimeoutError:
            await self._cancel_quietly(job.id)
            raise JobFailedError(
                "timeout", f"the job did not finish within {timeout:g} s", job_id=job.id
            ) from None
        except asyncio.CancelledError:
            # RunPod cancelled the request (or timed it out): stop the synthesis too.
            latest = manager.peek(job.id)
            if latest is None or not latest.is_terminal:
                task = asyncio.get_running_loop().create_task(self._cancel_quietly(job.id))
                self._background.add(task)  # keep a reference until it is done
                task.add_done_callback(self._background.discard)
            raise
        if current.state is JobState.SUCCEEDED:
            reporter.report(current, None, force=True)
            return current
        code = current.error_code or current.state.value
        message = scrub(current.error_message or f"the job ended {current.state.value}")
        raise JobFailedError(code, message, job_id=current.id, refresh=code == "internal_error")

    async def _cancel_quietly(self, job_id: str) -> None:
        with contextlib.suppress(Exception):
            await self.manager.cancel(job_id, wait_seconds=CANCEL_WAIT_SECONDS)


def _parse_input(raw: Any) -> tuple[TTSInput, str | None]:
    if not isinstance(raw, dict):
        raise JobFailedError(
            "validation_error", "input must be a JSON object with at least text and ref_name"
        )
    try:
        body = TTSRequest.model_validate(raw)
    except ValidationError as exc:
        raise invalid_input(exc) from None
    return body.to_input(), body.job_id


def _error_output(rp_id: str, exc: Exception) -> dict[str, Any]:
    """Typed errors keep their code and message; anything else is logged, not shown."""
    error = as_f5vi_error(exc)
    if not error.is_internal:
        logger.warning("RunPod job %s refused: %s: %s", rp_id, error.code, error.message)
        return error_output(error.code, scrub(error.message))
    logger.exception("RunPod job %s failed unexpectedly", rp_id)
    out = error_output("internal_error", "internal error; see the worker log")
    out["refresh_worker"] = True
    return out


class ProgressReporter:
    """Forwards job snapshots as ``{"stage", "percent", ...}``, throttled (stage change or +5 % / 1 s)."""

    def __init__(self, rp_job: Mapping[str, Any], sink: ProgressSink) -> None:
        self._rp_job = rp_job
        self._sink = sink
        self._last: tuple[str | None, float] | None = None
        self._last_time = 0.0
        self._seq = 0

    def report(self, job: Job, queue_position: int | None, *, force: bool = False) -> None:
        stage = job.stage if job.state is JobState.RUNNING else job.state.value
        if job.state is JobState.SUCCEEDED:
            stage = "done"
        percent = round(float(job.progress), 1)
        now = time.monotonic()
        if not force and self._last is not None:
            last_stage, last_percent = self._last
            if stage == last_stage and (
                percent - last_percent < PROGRESS_MIN_STEP
                or now - self._last_time < PROGRESS_MIN_INTERVAL_SECONDS
            ):
                return
        self._last = (stage, percent)
        self._last_time = now
        self._seq += 1
        # ``seq``: the SDK posts every update from its own thread, so they can arrive out of order.
        payload: dict[str, Any] = {
            "seq": self._seq,
            "job_id": job.id,
            "state": job.state.value,
            "stage": stage,
            "percent": percent,
        }
        if job.chunk_count:
            payload["chunk"] = job.chunk_index or 0
            payload["chunks"] = job.chunk_count
        if job.eta_seconds is not None:
            payload["eta_seconds"] = job.eta_seconds
        if job.state is JobState.QUEUED:
            payload["queue_position"] = queue_position
        try:
            self._sink(self._rp_job, payload)
        except Exception:  # progress is best effort
            logger.debug("progress update failed", exc_info=True)


# ------------------------------------------------------------------------------------------ main
def _raise_on_sigterm(signum: int, frame: Any) -> None:
    # uvicorn (SDK local API mode) restores this handler and re-raises SIGTERM after its shutdown;
    # turning it into SystemExit lets ``main`` stop the manager cleanly instead of dying mid-write.
    raise SystemExit(128 + signum)


def main() -> int:
    # The SDK logs whole job inputs and outputs (user text, audio_base64) at its default DEBUG
    # level; INFO unless the operator asks for more. Read by the SDK at import, so set it first.
    os.environ.setdefault("RUNPOD_LOG_LEVEL", "INFO")
    settings = Settings()
    configure_logging(settings)  # text, or JSON lines with F5VI_LOG_JSON=1, as the HTTP server
    # httpx logs every request URL at INFO; webhook and presigned URLs may carry credentials.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    worker = RunPodWorker(settings)
    try:
        worker.start()
    except StartupError as exc:
        print(f"f5vi RunPod worker: {exc.message}", file=sys.stderr, flush=True)
        return exc.exit_code
    import runpod

    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        runpod.serverless.start(
            {"handler": worker.handler, "concurrency_modifier": worker.concurrency_modifier}
        )
    finally:
        worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
