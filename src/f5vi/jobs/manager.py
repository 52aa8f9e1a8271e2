"""JobManager: durable jobs in front of one engine task.

One asyncio task (the *engine task*) takes :class:`~f5vi.jobs.queue.WorkItem` s from one queue and
runs them one at a time; the blocking synthesis runs in a worker thread so the event loop (HTTP
requests, progress polls, cancels) never waits for it. Every state change is written to the
:class:`~f5vi.jobs.store.JobStore` before it is published, so what a client saw survives a crash.

The manager knows nothing about HTTP: the FastAPI app and the RunPod worker both drive it.

Other kinds of engine work share the same queue, in arrival order: :meth:`JobManager.run_on_engine`
runs a blocking call in the engine's turn (voice transcription on upload, freeing memory), and a
new kind (e.g. a streaming request) registers a handler with :meth:`JobManager.register_handler`
and queues :class:`~f5vi.jobs.queue.WorkItem` s with :meth:`JobManager.enqueue_work`; its handler
runs ``Synthesizer.stream`` in a thread and hands chunks to its consumer, as ``_run_tts_job`` does
with progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio.to_thread

from f5vi.config import Settings
from f5vi.engine.errors import EngineError, InvalidParameterError, InvalidTextError, SynthesisCancelled
from f5vi.engine.types import CancelToken, ReferenceVoice, SynthesisRequest
from f5vi.jobs.errors import (
    InvalidConfirmationTokenError,
    InvalidJobIdError,
    JobConflictError,
    JobFinishedError,
    JobNotSucceededError,
    QueueFullError,
    ServiceUnavailableError,
    UnknownJobError,
)
from f5vi.jobs.events import EventHub, Subscription
from f5vi.jobs.models import JOB_KIND_TTS, Job, JobRequest, JobResult, TTSInput, is_valid_job_id
from f5vi.jobs.queue import WorkItem, WorkQueue, WorkQueueFullError
from f5vi.jobs.states import InvalidTransitionError, JobState
from f5vi.jobs.store import DuplicateJobError, JobStore
from f5vi.logging_setup import log_context
from f5vi.storage import OutputStorage, make_output_filename
from f5vi.voices.errors import VoiceLibraryError

if TYPE_CHECKING:
    from f5vi.engine.synthesizer import Synthesizer

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Where each part of a job lands on the 0-100 progress scale.
P_STARTING = 1.0
P_TRANSCRIBING = 2.0
P_ENGINE_START = 5.0
P_ENGINE_END = 95.0
P_ENCODING = 96.0
P_SAVING = 98.0

WORK_KIND_CALL = "call"
"""Engine work that is a plain blocking call (see :meth:`JobManager.run_on_engine`)."""

ENGINE_LOADING = "loading"
ENGINE_READY = "ready"
ENGINE_FAILED = "failed"


class VoiceLike(Protocol):
    id: str
    audio_path: Path
    transcript: str | None


class VoiceResolver(Protocol):
    """What the manager needs of :class:`f5vi.voices.library.VoiceLibrary`."""

    def resolve(self, ref_name: str) -> Any: ...

    def ensure_transcript(self, voice: Any) -> Any: ...


Encoder = Callable[[Any, int, str], bytes]
WorkHandler = Callable[[WorkItem], Awaitable[None]]


@dataclass(frozen=True)
class CurrentWork:
    kind: str
    key: str
    started_monotonic: float


class JobManager:
    """Durable job queue with one engine task.

    ``synthesizer`` may be None at construction: jobs are accepted and wait until
    :meth:`attach_engine` is called (the API loads the model in the background), or fail to be
    accepted once :meth:`engine_failed` was called.
    """

    def __init__(
        self,
        settings: Settings,
        synthesizer: Synthesizer | None,
        voices: VoiceResolver,
        storage: OutputStorage,
        *,
        store: JobStore | None = None,
        encoder: Encoder | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.voices = voices
        self.storage = storage
        self.store = store or JobStore(settings.database_path, clock=clock)
        self._clock = clock
        self._encode = encoder or _default_encoder
        self.queue = WorkQueue(settings.queue_max)
        self.events = EventHub()
        self._handlers: dict[str, WorkHandler] = {
            JOB_KIND_TTS: self._run_tts_job,
            WORK_KIND_CALL: self._run_call,
        }

        self._synth: Synthesizer | None = None
        self._engine_status = ENGINE_LOADING
        self._engine_error: str | None = None
        self._engine_ready = asyncio.Event()

        self._db_pool: ThreadPoolExecutor | None = None
        self._engine_task: asyncio.Task[None] | None = None
        self._retention_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._submit_lock = asyncio.Lock()
        self._accepting = False
        self._started = False
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()

        # In-memory view of jobs this process touched (active ones always present).
        self._snapshots: OrderedDict[str, Job] = OrderedDict()
        self._tokens: dict[str, CancelToken] = {}
        self._cancel_reason: dict[str, str] = {}
        self._done: dict[str, asyncio.Event] = {}
        self._pending: dict[str, Job] = {}  # progress not yet on disk (not visible yet)
        self._last_flush: dict[str, float] = {}
        self._flushing: set[str] = set()
        self._current: CurrentWork | None = None
        self._avg_job_seconds: float | None = None

        if synthesizer is not None:
            self.attach_engine(synthesizer)

    # ================================================================== lifecycle
    async def start(self) -> None:
        """Open the store, repair it after a crash, re-queue waiting jobs, start the tasks."""
        if self._started:
            return
        self._stopping = False
        self._db_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="f5vi-jobdb")
        await self._db(self.store.open)
        report = await self._db(self.store.recover, max_attempts=self.settings.job_max_attempts)
        for job_id in report.requeued:
            logger.warning("job %s was running when the server stopped; it will run again", job_id)
        for job_id in report.failed:
            logger.error("job %s was interrupted too often; marked failed", job_id)
        removed = await self._db(self.storage.remove_partials, older_than_seconds=0.0)
        if removed:
            logger.info("removed %d partial output file(s) left by an interrupted write", removed)
        for job_id in report.queued:
            job = await self._db(self.store.get, job_id)
            if job is not None and job.state is JobState.QUEUED:
                self._remember(job)
                self._tokens[job.id] = CancelToken()
                self.queue.put(WorkItem(kind=job.kind, key=job.id), force=True)
        if report.queued:
            logger.info("resuming %d queued job(s)", len(report.queued))
        self._accepting = True
        self._started = True
        self._engine_task = asyncio.create_task(self._engine_loop(), name="f5vi-engine")
        if self.settings.cleanup_interval_seconds > 0:
            self._retention_task = asyncio.create_task(self._retention_loop(), name="f5vi-retention")

    async def stop(self, *, timeout: float = 30.0) -> None:
        """Stop accepting work; interrupt the running job (it goes back to the queue) and close."""
        if not self._started:
            return
        self._accepting = False
        self._stopping = True
        current = self._current
        if current is not None and current.key in self._tokens:
            self._cancel_reason.setdefault(current.key, "shutdown")
            self._tokens[current.key].cancel()
        if current is not None:
            # Let the running job notice the cancel and put itself back in the queue.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)
        for task in (self._retention_task, self._engine_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._db(self.store.close)
        assert self._db_pool is not None
        self._db_pool.shutdown(wait=True)
        self._db_pool = None
        self._started = False

    # ================================================================== engine
    def attach_engine(self, synthesizer: Synthesizer) -> None:
        self._synth = synthesizer
        self._engine_status = ENGINE_READY
        self._engine_error = None
        self._engine_ready.set()

    def engine_failed(self, message: str) -> None:
        """The model could not be loaded: refuse new jobs (503); queued ones stay queued on disk."""
        self._engine_status = ENGINE_FAILED
        self._engine_error = message

    @property
    def synthesizer(self) -> Synthesizer | None:
        return self._synth

    @property
    def engine_status(self) -> str:
        return self._engine_status

    @property
    def engine_error(self) -> str | None:
        return self._engine_error

    def register_handler(self, kind: str, handler: WorkHandler) -> None:
        """Add another kind of engine work (e.g. streaming); it shares the queue in FIFO order."""
        self._handlers[kind] = handler

    def enqueue_work(self, item: WorkItem) -> None:
        """Queue non-job work of a registered kind (bounded like jobs)."""
        if item.kind not in self._handlers:
            raise ValueError(f"no handler for work of kind {item.kind!r}")
        try:
            self.queue.put(item)
        except WorkQueueFullError:
            raise QueueFullError(len(self.queue), self.retry_after_seconds()) from None

    async def run_on_engine(self, fn: Callable[[], T]) -> T:
        """Run a blocking call in the engine's turn (FIFO with jobs), e.g. ASR of an uploaded voice.

        Heavy model work must not run beside a synthesis on the same device. If the engine failed to
        load there is no engine turn to wait for, and the call runs in a thread directly.
        """
        if self._engine_status == ENGINE_FAILED or not self._started:
            return await anyio.to_thread.run_sync(fn)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.enqueue_work(
            WorkItem(kind=WORK_KIND_CALL, key=f"call_{secrets.token_hex(6)}", payload=(fn, future))
        )
        return await future

    def schedule_on_engine(self, fn: Callable[[], Any]) -> None:
        """Like :meth:`run_on_engine` without waiting for the result (errors are logged)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def _log(done: asyncio.Future[Any]) -> None:
            if not done.cancelled() and done.exception() is not None:
                logger.error("scheduled engine call failed: %s", done.exception())

        future.add_done_callback(_log)
        self.enqueue_work(
            WorkItem(kind=WORK_KIND_CALL, key=f"call_{secrets.token_hex(6)}", payload=(fn, future))
        )

    async def _run_call(self, item: WorkItem) -> None:
        fn, future = item.payload
        if future.done():  # the caller went away while it waited
            return
        try:
            result = await anyio.to_thread.run_sync(fn)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(result)

    # ================================================================== submit / read
    async def submit(
        self, request: TTSInput, *, job_id: str | None = None, idempotency_key: str | None = None
    ) -> Job:
        job, _ = await self.submit_or_get(request, job_id=job_id, idempotency_key=idempotency_key)
        return job

    async def submit_or_get(
        self, request: TTSInput, *, job_id: str | None = None, idempotency_key: str | None = None
    ) -> tuple[Job, bool]:
        """Queue a TTS job; returns ``(job, created)``.

        A ``job_id`` (or ``idempotency_key``) seen before returns the existing job with
        ``created=False`` when the request is the same, and raises :class:`JobConflictError`
        otherwise. Voice and parameter errors raise the typed voice/engine errors.
        """
        if job_id is not None and not is_valid_job_id(job_id):
            raise InvalidJobIdError(
                "job_id must be 1-128 characters: letters, digits, '_' or '-', "
                "starting with a letter or digit"
            )
        if idempotency_key is not None and not (0 < len(idempotency_key) <= 256):
            raise InvalidJobIdError("idempotency key must be 1-256 characters")
        self._check_accepting()
        voice = await anyio.to_thread.run_sync(self.voices.resolve, request.ref_name)
        job_request = self._build_request(request, voice)

        existing = await self._find_existing(job_id, idempotency_key)
        if existing is not None:
            return self._replay(existing, job_request), False

        self._validate(job_request, voice)
        async with self._submit_lock:
            self._check_accepting()
            if len(self.queue) >= self.queue.maxsize:
                raise QueueFullError(len(self.queue), self.retry_after_seconds())
            new_id = job_id or f"job_{secrets.token_hex(12)}"
            try:
                job = await self._db(
                    self.store.create,
                    job_id=new_id,
                    kind=JOB_KIND_TTS,
                    request=job_request,
                    output_filename=make_output_filename(new_id, _extension(job_request.format)),
                    confirm_token=secrets.token_urlsafe(24),
                    idempotency_key=idempotency_key,
                )
            except DuplicateJobError as exc:
                return self._replay(exc.existing, job_request), False
            self._remember(job)
            self._tokens.setdefault(job.id, CancelToken())
            self.queue.put(WorkItem(kind=JOB_KIND_TTS, key=job.id), force=True)
        logger.info("job %s queued (voice=%s, %d chars)", job.id, job_request.voice_id, len(job_request.text))
        self.events.publish(job)
        return job, True

    def _check_accepting(self) -> None:
        if not self._accepting:
            raise ServiceUnavailableError("the server is not accepting jobs (starting or shutting down)")
        if self._engine_status == ENGINE_FAILED:
            raise ServiceUnavailableError("the synthesis engine failed to load; see /health")

    async def _find_existing(self, job_id: str | None, key: str | None) -> Job | None:
        if key is not None:
            found = await self._db(self.store.get_by_idempotency_key, key)
            if found is not None:
                return found
        if job_id is not None:
            return await self._db(self.store.get, job_id)
        return None

    def _replay(self, existing: Job, request: JobRequest) -> Job:
        if existing.request_hash != request.fingerprint():
            raise JobConflictError(existing)
        return self._snapshots.get(existing.id, existing)

    def _build_request(self, request: TTSInput, voice: VoiceLike) -> JobRequest:
        s = self.settings
        return JobRequest(
            text=request.text,
            voice_id=voice.id,
            ref_name=request.ref_name,
            speed=float(request.speed if request.speed is not None else s.speed),
            nfe_step=int(request.nfe_step if request.nfe_step is not None else s.nfe_step),
            seed=request.seed,
            format=(request.format or "wav").lower(),
            cfg_strength=s.cfg_strength,
            sway_sampling_coef=s.sway_sampling_coef,
            ode_method=s.ode_method,
            cross_fade_seconds=s.cross_fade_seconds,
        )

    def _validate(self, job_request: JobRequest, voice: VoiceLike) -> None:
        """Submit-time checks: refuse now what would certainly fail later."""
        if not job_request.text.strip():
            raise InvalidTextError("text is empty")
        if len(job_request.text) > self.settings.max_text_chars:
            raise InvalidTextError(
                f"text has {len(job_request.text)} characters; the limit is {self.settings.max_text_chars}"
            )
        from f5vi.engine.audio import supported_formats

        if job_request.format not in supported_formats():
            raise InvalidParameterError(
                f"unsupported format {job_request.format!r}; available: {', '.join(supported_formats())}"
            )
        if self._synth is not None:
            self._synth.validate(self._synthesis_request(job_request, voice))

    @staticmethod
    def _synthesis_request(job_request: JobRequest, voice: VoiceLike) -> SynthesisRequest:
        return SynthesisRequest(
            text=job_request.text,
            reference=ReferenceVoice(
                audio_path=voice.audio_path, transcript=voice.transcript, voice_id=voice.id
            ),
            speed=job_request.speed,
            nfe_step=job_request.nfe_step,
            cfg_strength=job_request.cfg_strength,
            sway_sampling_coef=job_request.sway_sampling_coef,
            ode_method=job_request.ode_method,
            seed=job_request.seed,
            cross_fade_seconds=job_request.cross_fade_seconds,
        )

    def get(self, job_id: str) -> Job | None:
        """The latest state of a job (in-memory progress for active jobs), or None if unknown."""
        job = self._snapshots.get(job_id)
        if job is not None:
            return job
        if not is_valid_job_id(job_id):
            return None
        return self.store.get(job_id)

    async def get_async(self, job_id: str) -> Job | None:
        job = self._snapshots.get(job_id)
        if job is not None or not is_valid_job_id(job_id):
            return job
        return await self._db(self.store.get, job_id)

    async def find_by_output(self, filename: str) -> Job | None:
        return await self._db(self.store.find_by_output, filename)

    async def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Wait until the job is terminal; raises TimeoutError after ``timeout`` seconds."""
        job = await self.get_async(job_id)
        if job is None:
            raise UnknownJobError(job_id)
        if not job.is_terminal:
            await self._wait_terminal(job_id, timeout)
        final = await self.get_async(job_id)
        assert final is not None
        return final

    async def _wait_terminal(self, job_id: str, timeout: float | None) -> None:
        current = self._snapshots.get(job_id)
        if current is None or current.is_terminal:  # active jobs are always in memory
            return
        # No await between the check above and registering: a transition cannot slip in between.
        event = self._done.setdefault(job_id, asyncio.Event())
        await asyncio.wait_for(event.wait(), timeout)

    def subscribe(self, job_id: str | None = None) -> Subscription:
        """Job snapshots as they change (use as a context manager; iterate or ``await get()``)."""
        return self.events.subscribe(job_id)

    # ================================================================== queue facts
    def queue_position(self, job_id: str) -> int | None:
        return self.queue.position(job_id)

    @property
    def current(self) -> CurrentWork | None:
        return self._current

    @property
    def current_job(self) -> Job | None:
        current = self._current
        if current is None or current.kind != JOB_KIND_TTS:
            return None
        return self._snapshots.get(current.key)

    def retry_after_seconds(self) -> int:
        per_job = self._avg_job_seconds or 10.0
        return max(1, min(3600, math.ceil(per_job)))

    def estimated_wait_seconds(self, job_id: str) -> float | None:
        """Rough time until a queued job starts: jobs ahead x average duration + what runs now."""
        position = self.queue.position(job_id)
        if position is None or self._avg_job_seconds is None:
            return None
        running = self.current_job
        remaining_now = running.eta_seconds if running and running.eta_seconds is not None else 0.0
        return remaining_now + position * self._avg_job_seconds + self._avg_job_seconds

    def is_cancel_requested(self, job_id: str) -> bool:
        return self._cancel_reason.get(job_id) == "user"

    async def counts(self) -> dict[JobState, int]:
        return await self._db(self.store.counts)

    # ================================================================== cancel
    async def cancel(self, job_id: str, *, wait_seconds: float = 10.0) -> Job:
        """Cancel a queued job at once, or a running one within one ODE step.

        Returns the job: ``cancelled``, or still ``running`` if the engine did not stop within
        ``wait_seconds`` (it will). Raises :class:`JobFinishedError` for a finished job.
        """
        job = await self.get_async(job_id)
        if job is None:
            raise UnknownJobError(job_id)
        if job.is_terminal:
            raise JobFinishedError(job)
        if self.queue.remove(job_id) is not None:
            try:
                job = await self._transition(
                    job_id,
                    JobState.CANCELLED,
                    expected={JobState.QUEUED},
                    error_code="cancelled",
                    error_message="cancelled by request before it started",
                )
            except InvalidTransitionError:
                job = await self._reload(job_id)
                if job.is_terminal and job.state is not JobState.CANCELLED:
                    raise JobFinishedError(job) from None
            self._forget_active(job_id)
            logger.info("job %s cancelled while queued", job_id)
            return job
        # Running (or just being picked up): the engine task ends it.
        self._cancel_reason[job_id] = "user"
        self._tokens.setdefault(job_id, CancelToken()).cancel()
        with contextlib.suppress(TimeoutError):
            await self._wait_terminal(job_id, wait_seconds)
        job = await self._reload(job_id)
        if job.is_terminal and job.state is not JobState.CANCELLED:
            raise JobFinishedError(job)
        return job

    # ================================================================== downloads
    async def confirm_download(self, job_id: str, token: str | None) -> Job:
        job = await self.get_async(job_id)
        if job is None:
            raise UnknownJobError(job_id)
        if not token or not hmac.compare_digest(token.encode(), job.confirm_token.encode()):
            raise InvalidConfirmationTokenError()
        if job.state is not JobState.SUCCEEDED:
            raise JobNotSucceededError(job)
        job = await self._db(self.store.confirm_download, job_id)
        self._update_snapshot(job)
        return job

    async def check_download(self, job_id: str) -> Job:
        job = await self.get_async(job_id)
        if job is None:
            raise UnknownJobError(job_id)
        return job

    # ================================================================== retention
    async def cleanup_outputs(self, *, now: float | None = None) -> int:
        """Delete outputs past retention (sooner once confirmed), stray files and old records."""
        now = self._clock() if now is None else now
        s = self.settings
        expired = await self._db(
            self.store.outputs_to_expire,
            now=now,
            ttl_seconds=s.output_ttl_seconds,
            confirmed_ttl_seconds=s.confirmed_output_ttl_seconds,
        )
        removed = 0
        for job in expired:
            if await self._db(self.storage.delete, job.output_filename):
                removed += 1
            updated = await self._db(self.store.mark_output_deleted, job.id)
            self._update_snapshot(updated)
        removed += await self._db(self._remove_strays, now)
        purged = await self._db(self.store.purge_finished, before=now - s.job_record_ttl_seconds)
        for job_id in purged:
            self._snapshots.pop(job_id, None)
        if removed or purged:
            logger.info("retention: removed %d output file(s), %d old job record(s)", removed, len(purged))
        return removed

    def _remove_strays(self, now: float) -> int:
        """Files in the output dir that no job owns (e.g. records purged) once past the TTL."""
        known = self.store.known_output_filenames()
        removed = 0
        for item in list(self.storage.list_files()):
            if item.filename not in known and item.modified_at <= now - self.settings.output_ttl_seconds:
                removed += int(self.storage.delete(item.filename))
        removed += self.storage.remove_partials(older_than_seconds=3600.0)
        return removed

    async def _retention_loop(self) -> None:
        while True:
            try:
                await self.cleanup_outputs()
            except Exception:
                logger.exception("output retention pass failed")
            await asyncio.sleep(self.settings.cleanup_interval_seconds)

    # ================================================================== engine task
    async def _engine_loop(self) -> None:
        await self._engine_ready.wait()
        while not self._stopping:
            item = await self.queue.get()
            if self._stopping:
                self.queue.put_front(item)
                return
            self._current = CurrentWork(item.kind, item.key, time.monotonic())
            self._idle.clear()
            try:
                # Every log line of this turn (threads included) carries the job's id.
                with log_context(None if item.kind == WORK_KIND_CALL else item.key):
                    await self._handlers[item.kind](item)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("engine task: %s work %s failed unexpectedly", item.kind, item.key)
            finally:
                self._current = None
                self._idle.set()

    async def _run_tts_job(self, item: WorkItem) -> None:
        job_id = item.key
        token = self._tokens.setdefault(job_id, CancelToken())
        if token.cancelled and self._cancel_reason.get(job_id) == "user":
            with contextlib.suppress(InvalidTransitionError):
                await self._finish(job_id, JobState.CANCELLED, "cancelled", "cancelled by request")
            return
        try:
            job = await self._transition(
                job_id,
                JobState.RUNNING,
                expected={JobState.QUEUED},
                stage="starting",
                progress=P_STARTING,
                error_code=None,
                error_message=None,
            )
        except InvalidTransitionError:
            logger.info("job %s is no longer queued; skipped", job_id)
            self._forget_active(job_id)
            return
        logger.info("job %s running (attempt %d)", job_id, job.attempts)
        started = time.monotonic()
        saved = False
        try:
            result = await self._synthesize(job, token)
            token.raise_if_cancelled()
            self._progress(job_id, P_ENCODING, "encoding", job.chunk_count, job.chunk_count, None)
            fmt = job.request.format
            data = await anyio.to_thread.run_sync(self._encode, result.audio, result.sample_rate, fmt)
            token.raise_if_cancelled()
            self._progress(job_id, P_SAVING, "saving", None, None, None)
            stored = await anyio.to_thread.run_sync(self.storage.save, job.output_filename, data)
            saved = True
            token.raise_if_cancelled()
            job_result = JobResult(
                filename=job.output_filename,
                format=fmt,
                media_type=_media_type(fmt, result.sample_rate),
                size_bytes=stored.size_bytes,
                duration_seconds=round(result.duration_seconds, 3),
                sample_rate=result.sample_rate,
                seed=result.seed,
                reference_text=result.reference_text,
                normalized_text=result.normalized_text,
                chunk_count=len(result.chunks),
                processing_time_seconds=round(time.monotonic() - started, 3),
                warnings=list(result.warnings),
                timings={k: round(float(v), 4) for k, v in result.timings.items()},
            )
            chunks = len(result.chunks)
            await self._finish(
                job_id,
                JobState.SUCCEEDED,
                None,
                None,
                result=job_result,
                stage="done",
                chunk_index=chunks,
                chunk_count=chunks,
            )
            self._record_duration(time.monotonic() - started)
            logger.info(
                "job %s succeeded: %.2fs audio in %.2fs",
                job_id,
                job_result.duration_seconds,
                job_result.processing_time_seconds,
            )
        except SynthesisCancelled:
            if saved:
                await self._discard_output(job)
            if self._cancel_reason.get(job_id) == "shutdown":
                await self._requeue_for_shutdown(job_id)
            else:
                await self._finish(
                    job_id, JobState.CANCELLED, "cancelled", "cancelled by request while running"
                )
                logger.info("job %s cancelled while running", job_id)
        except (EngineError, VoiceLibraryError) as exc:
            if saved:
                await self._discard_output(job)
            await self._finish(job_id, JobState.FAILED, exc.code, exc.message)
            logger.warning("job %s failed: %s: %s", job_id, exc.code, exc.message)
        except Exception as exc:
            if saved:
                await self._discard_output(job)
            logger.exception("job %s failed unexpectedly", job_id)
            await self._finish(
                job_id,
                JobState.FAILED,
                "internal_error",
                f"synthesis failed unexpectedly ({type(exc).__name__}); see the server log",
            )

    async def _synthesize(self, job: Job, token: CancelToken) -> Any:
        assert self._synth is not None
        synth = self._synth
        voice = await anyio.to_thread.run_sync(self.voices.resolve, job.request.voice_id)
        if voice.transcript is None:
            self._progress(job.id, P_TRANSCRIBING, "transcribing", None, None, None)
            voice = await anyio.to_thread.run_sync(self.voices.ensure_transcript, voice)
        token.raise_if_cancelled()
        request = self._synthesis_request(job.request, voice)
        loop = asyncio.get_running_loop()
        engine_started = time.monotonic()

        def on_progress(fraction: float, stage: str, chunk_index: int, chunk_count: int) -> None:
            # Called in the worker thread: hand the update to the event loop without waiting.
            fraction = min(max(float(fraction), 0.0), 1.0)
            elapsed = time.monotonic() - engine_started
            eta = elapsed * (1.0 - fraction) / fraction if fraction >= 0.05 else None
            progress = P_ENGINE_START + (P_ENGINE_END - P_ENGINE_START) * fraction
            loop.call_soon_threadsafe(self._progress, job.id, progress, stage, chunk_index, chunk_count, eta)

        return await anyio.to_thread.run_sync(synth.synthesize, request, on_progress, token)

    # ================================================================== progress
    def _progress(
        self,
        job_id: str,
        progress: float,
        stage: str | None,
        chunk_index: int | None,
        chunk_count: int | None,
        eta: float | None,
    ) -> None:
        """Take a progress update (event loop thread) and publish it once it is on disk.

        Clients only ever see progress that was persisted first, so what they saw survives a
        ``kill -9`` and progress never goes backwards, not even across a crash. Writes happen on a
        stage change or every ``progress_persist_seconds``; updates in between are folded together.
        """
        job = self._snapshots.get(job_id)
        if job is None or job.state is not JobState.RUNNING:
            return
        base = self._pending.get(job_id, job)
        if stage == "done":  # the engine's last call; our own stages follow
            stage = base.stage
        pending = replace(
            base,
            progress=round(max(base.progress, job.progress, min(progress, 99.0)), 2),
            stage=stage,
            chunk_index=chunk_index if chunk_index is not None else base.chunk_index,
            chunk_count=chunk_count if chunk_count is not None else base.chunk_count,
            eta_seconds=round(eta, 1) if eta is not None else None,
        )
        self._pending[job_id] = pending
        due = (
            stage != job.stage
            or time.monotonic() - self._last_flush.get(job_id, 0.0) >= self.settings.progress_persist_seconds
        )
        if due and job_id not in self._flushing:
            self._flushing.add(job_id)
            self._spawn(self._flush_progress(job_id))

    async def _flush_progress(self, job_id: str) -> None:
        try:
            while (pending := self._pending.pop(job_id, None)) is not None:
                self._last_flush[job_id] = time.monotonic()
                written = await self._db(
                    self.store.update_progress,
                    job_id,
                    progress=pending.progress,
                    stage=pending.stage,
                    chunk_index=pending.chunk_index,
                    chunk_count=pending.chunk_count,
                    eta_seconds=pending.eta_seconds,
                )
                current = self._snapshots.get(job_id)
                if not written or current is None or current.state is not JobState.RUNNING:
                    self._pending.pop(job_id, None)
                    return
                visible = replace(
                    current,
                    progress=max(current.progress, pending.progress),
                    stage=pending.stage,
                    chunk_index=pending.chunk_index,
                    chunk_count=pending.chunk_count,
                    eta_seconds=pending.eta_seconds,
                    updated_at=self._clock(),
                )
                self._snapshots[job_id] = visible
                self.events.publish(visible)
                nxt = self._pending.get(job_id)
                if nxt is None or nxt.stage == visible.stage:
                    return  # the rest waits for the next interval
        finally:
            self._flushing.discard(job_id)

    # ================================================================== transitions
    async def _transition(
        self, job_id: str, target: JobState, *, expected: set[JobState] | None = None, **changes: Any
    ) -> Job:
        """Persist, then update memory, then publish (in that order)."""
        known = self._snapshots.get(job_id)
        if known is not None:
            changes["progress"] = max(float(changes.get("progress", 0.0)), known.progress)
        job = await self._db(self.store.transition, job_id, target, expected=expected, **changes)
        self._update_snapshot(job)
        self.events.publish(job)
        if job.is_terminal and (waiters := self._done.pop(job_id, None)) is not None:
            waiters.set()
        return job

    async def _finish(
        self, job_id: str, state: JobState, code: str | None, message: str | None, **changes: Any
    ) -> Job:
        try:
            return await self._transition(
                job_id,
                state,
                expected={JobState.RUNNING, JobState.QUEUED},
                error_code=code,
                error_message=message,
                **changes,
            )
        finally:
            self._forget_active(job_id)

    async def _requeue_for_shutdown(self, job_id: str) -> None:
        """Graceful stop interrupted the job: back to the queue, not counted as an attempt."""
        job = await self._reload(job_id)
        await self._transition(
            job_id,
            JobState.QUEUED,
            expected={JobState.RUNNING},
            attempts=max(job.attempts - 1, 0),
            stage=None,
            eta_seconds=None,
        )
        logger.info("job %s interrupted by shutdown; it stays queued", job_id)

    async def _discard_output(self, job: Job) -> None:
        with contextlib.suppress(Exception):
            await anyio.to_thread.run_sync(self.storage.delete, job.output_filename)

    async def _reload(self, job_id: str) -> Job:
        job = await self._db(self.store.get, job_id)
        if job is None:
            raise UnknownJobError(job_id)
        self._update_snapshot(job)
        return job

    # ================================================================== memory
    _MAX_FINISHED_SNAPSHOTS = 256

    def _remember(self, job: Job) -> None:
        self._snapshots[job.id] = job
        self._snapshots.move_to_end(job.id)
        finished = [k for k, v in self._snapshots.items() if v.is_terminal]
        for key in finished[: max(0, len(finished) - self._MAX_FINISHED_SNAPSHOTS)]:
            del self._snapshots[key]

    def _update_snapshot(self, job: Job) -> None:
        """Keep the in-memory copy; an active job's progress in memory may be ahead of the database."""
        previous = self._snapshots.get(job.id)
        if previous is not None and previous.state is job.state and not job.is_terminal:
            job = replace(job, progress=max(job.progress, previous.progress))
        self._remember(job)

    def _forget_active(self, job_id: str) -> None:
        self._tokens.pop(job_id, None)
        self._cancel_reason.pop(job_id, None)
        self._pending.pop(job_id, None)
        self._last_flush.pop(job_id, None)

    def _record_duration(self, seconds: float) -> None:
        if self._avg_job_seconds is None:
            self._avg_job_seconds = seconds
        else:
            self._avg_job_seconds = 0.7 * self._avg_job_seconds + 0.3 * seconds

    # ================================================================== plumbing
    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store/storage call on the single database thread (FIFO, off the event loop)."""
        if self._db_pool is None:
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_pool, functools.partial(fn, *args, **kwargs))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _default_encoder(wave: Any, sample_rate: int, fmt: str) -> bytes:
    from f5vi.engine.audio import encode_audio

    return encode_audio(wave, sample_rate, fmt)


def _extension(fmt: str) -> str:
    from f5vi.engine.audio import AUDIO_FORMATS

    spec = AUDIO_FORMATS.get(fmt)
    return spec.extension if spec is not None else fmt


def _media_type(fmt: str, sample_rate: int) -> str:
    from f5vi.engine.audio import AUDIO_FORMATS

    spec = AUDIO_FORMATS.get(fmt)
    if spec is None:
        return "application/octet-stream"
    if spec.name == "pcm":
        return f"{spec.media_type};rate={sample_rate};channels=1"
    return spec.media_type
