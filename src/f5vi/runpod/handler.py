"""RunPod serverless worker: RunPod jobs drive the same JobManager/Synthesizer as the HTTP API.

Process layout (one process, nothing over loopback HTTP)::

    main thread           runpod.serverless.start(...)  -> async handler(job)      (SDK's event loop)
                                                              |  run_coroutine_threadsafe
    thread "f5vi-loop"    f5vi event loop: app lifespan -> JobManager (engine task, SQLite store)
                                           + uvicorn serving the f5vi app (downloads, confirmation)

The engine is loaded once, before ``runpod.serverless.start`` is called: a worker whose model does
not load exits non-zero with a message on stderr instead of taking jobs it cannot run. The JobManager
lives on its own loop so neither the SDK's loop nor a slow client can stall progress or downloads,
and the f5vi HTTP app (started on that same loop with the manager the lifespan built) serves
``/output/<file>`` and ``/confirm-download/<job>`` for the results.

Idempotency: every RunPod job is submitted with the idempotency key ``runpod:<RunPod job id>`` and,
when the client sent one, its ``job_id`` as the f5vi job id; both are unique in the job table on
disk. A redelivered job (same RunPod id, or the same client ``job_id`` with the same request) finds
the existing job, waits for it if it is still running and returns the stored result: the engine does
not run again, also after a worker restart with the same data directory.

Delivery: the result is durable before the handler returns (the output file is fsynced in
``F5VI_OUTPUT_DIR``; with S3 configured it is also uploaded with the SDK's ``upload_file_to_bucket``
and the presigned URL is returned). Small results also travel inline as ``audio_base64``. The job is
never held IN_PROGRESS waiting for a download confirmation; see ``docs/runpod.md``.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from f5vi.config import Settings
from f5vi.logging_setup import configure_logging
from f5vi.runpod import webhook

if TYPE_CHECKING:
    from fastapi import FastAPI

    from f5vi.engine.synthesizer import Synthesizer
    from f5vi.jobs.manager import JobManager
    from f5vi.jobs.models import Job

logger = logging.getLogger("f5vi.runpod")
T = TypeVar("T")

EXIT_CONFIG_ERROR = 2
EXIT_MODEL_LOAD_FAILED = 4

IDEMPOTENCY_PREFIX = "runpod:"
LOCAL_TEST_JOB_ID = "local_test"
"""The id the SDK gives every ``--test_input``/``test_input.json`` run: never an idempotency key."""

DELIVERY_DIR = "runpod"
PROGRESS_MIN_INTERVAL_SECONDS = 1.0
PROGRESS_MIN_STEP = 5.0

ProgressSink = Callable[[Mapping[str, Any], dict[str, Any]], None]


class StartupError(Exception):
    """The worker cannot take jobs; ``main`` prints ``message`` and exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class JobFailedError(Exception):
    """A job that ends in an error output; ``message`` is safe to show to the client."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        job_id: str | None = None,
        refresh: bool = False,
        details: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.job_id = job_id
        self.refresh = refresh
        self.details = details


# ------------------------------------------------------------------------------------------ helpers
def error_output(code: str, message: str, details: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """``{"error": "<JSON of {code, message[, details]}>"}``: the SDK reports the job FAILED.

    The value is a JSON *string*, not an object: runpod-python types the job error as a string (its
    local API answers 500 to a dict) and formats its own handler exceptions the same way, as a JSON
    string of an object. Clients ``JSON.parse(error)`` to get the code.
    """
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": json.dumps(error, ensure_ascii=False)}


def sdk_progress_sink(job: Mapping[str, Any], payload: dict[str, Any]) -> None:
    """``runpod.serverless.progress_update`` where it has somewhere to go.

    The SDK posts progress to ``RUNPOD_WEBHOOK_POST_OUTPUT``; outside RunPod that variable is unset
    and every call would only log "Failed to return job results", so progress is logged instead.
    """
    if os.environ.get("RUNPOD_WEBHOOK_POST_OUTPUT"):
        from runpod.serverless import progress_update

        progress_update(dict(job), payload)
    else:
        logger.debug("progress %s: %s", job.get("id"), payload)


def public_base_url(settings: Settings) -> str:
    """Base of the URLs handed to clients: configured, else the RunPod proxy of this pod's port."""
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    pod_id = os.environ.get("RUNPOD_POD_ID")
    if pod_id:
        return f"https://{pod_id}-{settings.port}.proxy.runpod.net"
    host = settings.host if settings.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    return f"http://{host}:{settings.port}"


def s3_configured(settings: Settings) -> bool:
    return bool(settings.s3_bucket or os.environ.get("BUCKET_ENDPOINT_URL"))


def _check_s3_credentials() -> None:
    missing = [
        name
        for name in ("BUCKET_ENDPOINT_URL", "BUCKET_ACCESS_KEY_ID", "BUCKET_SECRET_ACCESS_KEY")
        if not os.environ.get(name)
    ]
    if missing:
        # Without them the SDK helper silently "uploads" to a local folder: refuse instead.
        raise StartupError(
            "S3 delivery is configured (F5VI_S3_BUCKET or BUCKET_ENDPOINT_URL) but "
            + ", ".join(missing)
            + " is not set; set all three or neither",
            EXIT_CONFIG_ERROR,
        )


def _validation_details(exc: ValidationError) -> list[dict[str, str]]:
    """Field, message and type of each problem; never the offending input value (may be the text)."""
    return [
        {
            "field": ".".join(str(p) for p in err.get("loc", ())) or "input",
            "message": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


class _LoopThread:
    """An asyncio loop running forever in a daemon thread; coroutines are submitted to it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.submit(coro).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


# ------------------------------------------------------------------------------------------ worker
class RunPodWorker:
    """Everything one worker process holds. :meth:`start` once, then :meth:`handler` per job."""

    def __init__(
        self,
        settings: Settings,
        *,
        synthesizer: Synthesizer | None = None,
        engine_loader: Callable[[Settings], Synthesizer] | None = None,
        serve_http: bool | None = None,
        progress_sink: ProgressSink = sdk_progress_sink,
    ) -> None:
        self.settings = settings
        self._synthesizer = synthesizer
        self._engine_loader = engine_loader
        self.serve_http = settings.runpod_serve_http if serve_http is None else serve_http
        self._progress_sink = progress_sink
        self._loop: _LoopThread | None = None
        self._app: FastAPI | None = None
        self._lifespan: contextlib.AbstractAsyncContextManager[Any] | None = None
        self._server: Any = None
        self._server_future: concurrent.futures.Future[Any] | None = None
        self._manager: JobManager | None = None
        self._delivery_locks: dict[str, asyncio.Lock] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.base_url = public_base_url(settings)
        self.use_s3 = s3_configured(settings)

    # -------------------------------------------------------------------- lifecycle
    @property
    def manager(self) -> JobManager:
        if self._manager is None:
            raise RuntimeError("the worker is not started")
        return self._manager

    def start(self) -> None:
        """Load the engine, start the job manager (and the HTTP app). Raises :class:`StartupError`."""
        settings = self.settings
        if self.use_s3:
            _check_s3_credentials()
        try:
            settings.ensure_dirs()
        except OSError as exc:
            raise StartupError(
                f"cannot create the data/output directories: {exc}", EXIT_CONFIG_ERROR
            ) from exc

        synth = self._synthesizer or self._load_engine()
        self._synthesizer = synth

        from f5vi.api.app import create_app

        self._app = create_app(settings, synthesizer=synth)
        self._loop = _LoopThread("f5vi-loop")
        self._loop.start()
        try:
            self._loop.call(self._enter_lifespan(), timeout=120)
        except Exception as exc:
            self._loop.stop()
            raise StartupError(
                f"the job manager could not start: {type(exc).__name__}: {exc}", EXIT_CONFIG_ERROR
            ) from exc
        if self.serve_http:
            self._start_http()
        logger.info(
            "RunPod worker ready: model=%s%s, results via %s, http=%s, webhook=%s",
            synth.info.model,
            " (DEMO: noise)" if synth.info.is_demo else "",
            "S3 bucket" if self.use_s3 else self.base_url,
            f"{settings.host}:{settings.port}" if self.serve_http else "off",
            "on" if settings.webhook_url else "off",
        )

    def _load_engine(self) -> Synthesizer:
        settings = self.settings
        started = time.perf_counter()
        try:
            if self._engine_loader is not None:
                synth = self._engine_loader(settings)
            else:
                from f5vi.api.engine_loader import load_synthesizer

                synth = load_synthesizer(settings, demo_fallback=False)
        except Exception as exc:
            from f5vi.api.errors import scrub

            detail = getattr(exc, "message", None) or str(exc)
            raise StartupError(
                f"the model failed to load (F5VI_MODEL={settings.model}, F5VI_VOCODER={settings.vocoder}): "
                f"{type(exc).__name__}: {scrub(detail)}; the worker will not accept jobs",
                EXIT_MODEL_LOAD_FAILED,
            ) from exc
        logger.info("engine loaded once for this worker in %.1f s", time.perf_counter() - started)
        return synth

    async def _enter_lifespan(self) -> None:
        assert self._app is not None
        lifespan = self._app.router.lifespan_context(self._app)
        await lifespan.__aenter__()
        self._lifespan = lifespan
        self._manager = self._app.state.manager

    def _start_http(self) -> None:
        import uvicorn

        assert self._app is not None and self._loop is not None
        config = uvicorn.Config(
            self._app,
            host=self.settings.host,
            port=self.settings.port,
            lifespan="off",  # the lifespan already runs on this loop (see _enter_lifespan)
            log_level=self.settings.log_level.lower(),
            server_header=False,
            access_log=False,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._server_future = self._loop.submit(server.serve())
        deadline = time.monotonic() + 30.0
        while not server.started:
            if self._server_future.done() or time.monotonic() > deadline:
                error = None
                if self._server_future.done():
                    with contextlib.suppress(BaseException):
                        error = self._server_future.exception()
                self.stop()
                raise StartupError(
                    f"the f5vi HTTP app could not listen on {self.settings.host}:{self.settings.port}"
                    + (f" ({type(error).__name__}: {error})" if error else "")
                    + "; set F5VI_PORT, or F5VI_RUNPOD_SERVE_HTTP=false with S3 delivery",
                    EXIT_CONFIG_ERROR,
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving, interrupt the running job (it stays queued on disk), close the store."""
        loop = self._loop
        if loop is None:
            return
        if self._server is not None:
            self._server.should_exit = True
            if self._server_future is not None:
                with contextlib.suppress(BaseException):
                    self._server_future.result(timeout=10)
        if self._lifespan is not None:
            lifespan, self._lifespan = self._lifespan, None
            try:
                loop.call(lifespan.__aexit__(None, None, None), timeout=timeout)
            except BaseException:
                logger.exception("job manager did not stop cleanly")
        loop.stop()
        self._loop = None

    # -------------------------------------------------------------------- the RunPod handler
    async def handler(self, job: dict[str, Any]) -> dict[str, Any]:
        """RunPod entry point (``async``: the SDK awaits it and can cancel it)."""
        loop = self._loop
        if loop is None:
            return error_output("service_unavailable", "the worker is not started")
        future = loop.submit(self._process(job))
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()  # cancels _process on the f5vi loop, which cancels the f5vi job
            raise

    async def _process(self, rp_job: Mapping[str, Any]) -> dict[str, Any]:
        """Runs on the f5vi loop: validate, submit or find, wait with progress, deliver."""
        rp_id = str(rp_job.get("id") or "")
        try:
            request, client_job_id = self._parse_input(rp_job.get("input"))
            key = None if rp_id in ("", LOCAL_TEST_JOB_ID) else f"{IDEMPOTENCY_PREFIX}{rp_id}"
            job = await self._submit_and_wait(rp_job, request, client_job_id, key)
            return await self._deliver(rp_job, job)
        except JobFailedError as failure:
            out = error_output(failure.code, failure.message, failure.details)
            if failure.job_id:
                out["job_id"] = failure.job_id
            if failure.refresh:
                out["refresh_worker"] = True
            logger.warning("RunPod job %s failed: %s: %s", rp_id, failure.code, failure.message)
            return out
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return self._error_output(rp_id, exc)

    def _parse_input(self, raw: Any) -> tuple[Any, str | None]:
        from f5vi.api.schemas import TTSRequest

        if not isinstance(raw, dict):
            raise JobFailedError(
                "validation_error", "input must be a JSON object with at least text and ref_name"
            )
        try:
            body = TTSRequest.model_validate(raw)
        except ValidationError as exc:
            details = _validation_details(exc)
            message = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3]) or "invalid input"
            raise JobFailedError("validation_error", message, details=details) from None
        return body.to_input(), body.job_id

    async def _submit_and_wait(
        self, rp_job: Mapping[str, Any], request: Any, client_job_id: str | None, key: str | None
    ) -> Job:
        from f5vi.jobs.states import JobState

        manager = self.manager
        job, created = await manager.submit_or_get(request, job_id=client_job_id, idempotency_key=key)
        if not created:
            logger.info(
                "RunPod job %s: f5vi job %s already exists (%s); not synthesising again",
                rp_job.get("id"),
                job.id,
                job.state.value,
            )
        reporter = _ProgressReporter(rp_job, self._progress_sink)
        deadline = time.monotonic() + self.settings.runpod_job_timeout_seconds
        try:
            with manager.subscribe(job.id) as updates:
                current = await manager.get_async(job.id) or job
                while not current.is_terminal:
                    reporter.report(current, manager)
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        await self._cancel_quietly(job.id)
                        raise JobFailedError(
                            "timeout",
                            f"the job did not finish within {self.settings.runpod_job_timeout_seconds:g} s",
                            job_id=job.id,
                        )
                    try:
                        current = await updates.get(timeout=min(5.0, remaining))
                    except TimeoutError:  # also covers an update lost between get and subscribe
                        current = await manager.get_async(job.id) or current
        except asyncio.CancelledError:
            # RunPod cancelled the request (or timed it out): stop the synthesis too.
            latest = manager.get(job.id)
            if latest is None or not latest.is_terminal:
                task = asyncio.get_running_loop().create_task(self._cancel_quietly(job.id))
                self._background.add(task)  # keep a reference until it is done
                task.add_done_callback(self._background.discard)
            raise
        if current.state is JobState.SUCCEEDED:
            reporter.report(current, manager, force=True)
            return current
        code = current.error_code or current.state.value
        from f5vi.api.errors import scrub

        message = scrub(current.error_message or f"the job ended {current.state.value}")
        raise JobFailedError(code, message, job_id=current.id, refresh=code == "internal_error")

    async def _cancel_quietly(self, job_id: str) -> None:
        with contextlib.suppress(Exception):
            await self.manager.cancel(job_id, wait_seconds=5.0)

    # -------------------------------------------------------------------- delivery
    def _record_path(self, job_id: str) -> Path:
        return self.settings.data_dir / DELIVERY_DIR / f"{job_id}.json"

    async def _deliver(self, rp_job: Mapping[str, Any], job: Job) -> dict[str, Any]:
        """Build the output of a succeeded job; upload/notify once per job (a record on disk)."""
        lock = self._delivery_locks.setdefault(job.id, asyncio.Lock())
        async with lock:
            record = await self._prepare_record(job)
            output = self._output(rp_job, job, record)
            if self.settings.webhook_url and not record.get("webhook", {}).get("delivered"):
                outcome = await webhook.deliver(
                    self._webhook_config(), self._webhook_body(rp_job, job, record)
                )
                record["webhook"] = {
                    "delivered": outcome.delivered,
                    "attempts": record.get("webhook", {}).get("attempts", 0) + outcome.attempts,
                    "delivery_id": outcome.delivery_id,
                    "status_code": outcome.status_code,
                    "error": outcome.error,
                }
                await asyncio.to_thread(_write_json_atomic, self._record_path(job.id), record)
            if self.settings.webhook_url:
                output["webhook_delivered"] = bool(record["webhook"]["delivered"])
        if not lock.locked():
            self._delivery_locks.pop(job.id, None)
        return output

    def _read_record(self, job_id: str) -> dict[str, Any] | None:
        path = self._record_path(job_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    async def _prepare_record(self, job: Job) -> dict[str, Any]:
        """The job's delivery record: made (and the upload done) on first delivery, reused after.

        Local results get their URLs from the *current* base URL each time (a restarted worker may
        sit behind another address); only an uploaded object's presigned URL is stored. An upload
        that failed before is tried again.
        """
        assert job.result is not None
        record = await asyncio.to_thread(self._read_record, job.id)
        if record is None:
            record = {"job_id": job.id, "storage": "local", "created_at": time.time()}
        elif record.get("storage") == "s3":
            return record
        if job.output_deleted_at is not None:
            raise JobFailedError(
                "output_expired",
                "the audio of this job was removed after its retention period",
                job_id=job.id,
            )
        if self.use_s3:
            path = self.manager.storage.local_path(job.result.filename)
            if path is None:
                raise JobFailedError("output_missing", "the audio file of this job is missing", job_id=job.id)
            try:
                url = await asyncio.to_thread(self._upload, path, job.result.filename, job.result.media_type)
            except Exception as exc:  # the local copy still serves; say so instead of failing the job
                logger.exception("upload of %s to the bucket failed; returning the worker URL", job.id)
                record["upload_error"] = type(exc).__name__
            else:
                record.pop("upload_error", None)
                record.update(storage="s3", download_url=url, url_expires_at=time.time() + 7 * 24 * 3600)
        await asyncio.to_thread(_write_json_atomic, self._record_path(job.id), record)
        return record

    def _upload(self, path: Path, filename: str, media_type: str) -> str:
        from runpod.serverless.utils.rp_upload import upload_file_to_bucket

        return upload_file_to_bucket(
            file_name=filename,
            file_location=str(path),
            bucket_name=self.settings.s3_bucket,
            prefix=self.settings.s3_prefix or None,
            extra_args={"ContentType": media_type.split(";")[0]},
        )

    def _download_url(self, job: Job, record: Mapping[str, Any]) -> str:
        from f5vi.api.views import output_url

        assert job.result is not None
        if record.get("storage") == "s3" and record.get("download_url"):
            return str(record["download_url"])
        return output_url(self.base_url, job, job.result.filename)

    def _output(self, rp_job: Mapping[str, Any], job: Job, record: Mapping[str, Any]) -> dict[str, Any]:
        from f5vi.api.errors import scrub
        from f5vi.api.views import confirmation_url, expires_at

        result = job.result
        assert result is not None
        output: dict[str, Any] = {
            "job_id": job.id,
            "runpod_job_id": rp_job.get("id"),
            "status": "completed",
            "filename": result.filename,
            "download_url": self._download_url(job, record),
            "confirmation_url": confirmation_url(self.base_url, job),
            "storage": record.get("storage", "local"),
            "sample_used": job.request.voice_id,
            "processing_time_seconds": result.processing_time_seconds,
            "duration_seconds": result.duration_seconds,
            "format": result.format,
            "media_type": result.media_type,
            "size_bytes": result.size_bytes,
            "sample_rate": result.sample_rate,
            "seed": result.seed,
            "expires_at": record.get("url_expires_at") or expires_at(job, self.settings),
            "confirmed": job.confirmed_at is not None,
            "warnings": [scrub(w) for w in result.warnings],
        }
        limit = self.settings.audio_base64_max_bytes
        if 0 < result.size_bytes <= limit and job.output_deleted_at is None:
            path = self.manager.storage.local_path(result.filename)
            if path is not None:
                output["audio_base64"] = base64.b64encode(path.read_bytes()).decode("ascii")
        return output

    def _webhook_config(self) -> webhook.WebhookConfig:
        s = self.settings
        return webhook.WebhookConfig(
            url=str(s.webhook_url),
            secret=s.webhook_secret.get_secret_value() if s.webhook_secret else None,
            api_key=s.webhook_api_key.get_secret_value() if s.webhook_api_key else None,
            retries=s.webhook_retries,
            timeout_seconds=s.webhook_timeout_seconds,
        )

    def _webhook_body(self, rp_job: Mapping[str, Any], job: Job, record: Mapping[str, Any]) -> dict[str, Any]:
        """The seed's four fields first (the Next.js route reads them), then a few useful extras."""
        from f5vi.api.views import confirmation_url

        assert job.result is not None
        return {
            "job_id": job.id,
            "download_url": self._download_url(job, record),
            "confirmation_url": confirmation_url(self.base_url, job),
            "filename": job.result.filename,
            "status": "completed",
            "runpod_job_id": rp_job.get("id"),
            "duration_seconds": job.result.duration_seconds,
            "media_type": job.result.media_type,
        }

    def _error_output(self, rp_id: str, exc: Exception) -> dict[str, Any]:
        """Typed errors keep their code and message; anything else is logged, not shown."""
        from f5vi.api.errors import scrub, status_for

        code = getattr(exc, "code", None)
        message = getattr(exc, "message", None)
        status, _ = status_for(exc)
        if code and message and (status < 500 or status == 503):
            logger.warning("RunPod job %s refused: %s: %s", rp_id, code, message)
            return error_output(str(code), scrub(str(message)))
        logger.exception("RunPod job %s failed unexpectedly", rp_id)
        out = error_output("internal_error", "internal error; see the worker log")
        out["refresh_worker"] = True
        return out


class _ProgressReporter:
    """Forwards job snapshots as ``{"stage", "percent", ...}``, throttled (stage change or +5 % / 1 s)."""

    def __init__(self, rp_job: Mapping[str, Any], sink: ProgressSink) -> None:
        self._rp_job = rp_job
        self._sink = sink
        self._last: tuple[str | None, float] | None = None
        self._last_time = 0.0
        self._seq = 0

    def report(self, job: Job, manager: JobManager, *, force: bool = False) -> None:
        from f5vi.jobs.states import JobState

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
            payload["queue_position"] = manager.queue_position(job.id)
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
        runpod.serverless.start({"handler": worker.handler})
    finally:
        worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
