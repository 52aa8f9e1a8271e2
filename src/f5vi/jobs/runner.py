"""One TTS job's turn on the engine: synthesise, encode, store, and record how it ended.

Registered with the :class:`~f5vi.jobs.scheduler.EngineScheduler` for work of kind ``tts``. A cancel
(checked between ODE steps) ends the job ``cancelled``, or — when the server is shutting down —
puts it back in the queue without counting the attempt. Typed errors fail the job with their code;
anything else is logged and the job fails as ``internal_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from f5vi.engine.errors import SynthesisCancelled
from f5vi.engine.text.lexicon import Lexicon
from f5vi.errors import F5viError, as_f5vi_error
from f5vi.formats import FORMATS
from f5vi.jobs.errors import JobStoreWriteError
from f5vi.jobs.models import Job, JobResult, JobSegment
from f5vi.jobs.progress import (
    P_ENCODING,
    P_SAVING,
    P_STARTING,
    P_TRANSCRIBING,
    ProgressWriter,
    engine_progress,
)
from f5vi.jobs.queue import WorkItem
from f5vi.jobs.requests import VoiceResolver, needs_transcripts, resolve_request
from f5vi.jobs.scheduler import EngineScheduler
from f5vi.jobs.states import InvalidTransitionError, JobState
from f5vi.jobs.store import LeaseLostError
from f5vi.jobs.tracker import ActiveJob, CancelReason, JobTracker
from f5vi.jobs.voice_turn import with_voices_ready
from f5vi.storage import OutputStorage, OutputWriteError, StoredFile

if TYPE_CHECKING:
    from f5vi.engine.types import SynthesisResult

logger = logging.getLogger(__name__)

Encoder = Callable[[Any, int, str], bytes]


def default_encoder(wave: Any, sample_rate: int, fmt: str) -> bytes:
    from f5vi.engine.audio import encode_audio  # torch-heavy: imported when the first job runs

    return encode_audio(wave, sample_rate, fmt)


@dataclass(frozen=True)
class JobRunner:
    tracker: JobTracker
    progress: ProgressWriter
    scheduler: EngineScheduler
    voices: VoiceResolver
    storage: OutputStorage
    encode: Encoder
    server_lexicon: Lexicon = field(default_factory=Lexicon)

    def interrupt(self, item: WorkItem) -> None:
        """Shutdown: stop the running job at the next ODE step; it goes back to the queue."""
        active = self.tracker.active(item.key)
        if active is not None:
            active.cancel(CancelReason.SHUTDOWN)

    async def run(self, item: WorkItem) -> None:
        job_id = item.key
        tracker = self.tracker
        active = tracker.active(job_id)
        if active is None:
            logger.info("job %s is no longer active; skipped", job_id)
            return
        if active.cancel_reason is CancelReason.USER:
            with contextlib.suppress(InvalidTransitionError):
                await self._finish(job_id, JobState.CANCELLED, "cancelled", "cancelled by request")
            return
        try:
            job = await tracker.transition(
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
            tracker.release(job_id)
            return
        except Exception as exc:  # the store did not take "running" (e.g. disk full): the job fails
            error = as_f5vi_error(exc)
            logger.error("job %s could not start: %s: %s", job_id, error.code, error.message)
            await self._finish(job_id, JobState.FAILED, error.code, error.message)
            return
        logger.info("job %s running (attempt %d)", job_id, job.attempts)
        try:
            await self._run_started(job, active)
        except LeaseLostError:
            self._lease_lost(job_id)

    async def _run_started(self, job: Job, active: ActiveJob) -> None:
        job_id = job.id
        try:
            started = time.monotonic()
            result = await self._synthesize(job, active)
            await self._store(job, active, result, started)
        except SynthesisCancelled:
            if active.cancel_reason is CancelReason.LEASE_LOST:
                self._lease_lost(job_id)
            elif active.cancel_reason is CancelReason.SHUTDOWN:
                await self._requeue_for_shutdown(job_id)
            else:
                await self._finish(
                    job_id, JobState.CANCELLED, "cancelled", "cancelled by request while running"
                )
                logger.info("job %s cancelled while running", job_id)
        except LeaseLostError:
            raise
        except Exception as exc:
            error = as_f5vi_error(exc)
            if error.is_internal:
                logger.exception("job %s failed unexpectedly", job_id)
            else:
                logger.warning("job %s failed: %s: %s", job_id, error.code, error.message)
            await self._finish(job_id, JobState.FAILED, error.code, error.message)

    def _lease_lost(self, job_id: str) -> None:
        """Another instance holds the job now (shared store): it finishes it; we wrote nothing."""
        logger.warning("job %s: this instance lost its lease; the run is abandoned", job_id)
        self.tracker.release(job_id)

    async def _synthesize(self, job: Job, active: ActiveJob) -> SynthesisResult:
        synth = self.scheduler.synthesizer
        assert synth is not None, "the scheduler runs work only once the engine is attached"
        # the voices as they are now (its own and the text's tagged ones): one may have a new transcript
        request = await anyio.to_thread.run_sync(
            resolve_request, job.request, self.voices, self.server_lexicon
        )
        if needs_transcripts(request):
            self.progress.update(job.id, P_TRANSCRIBING, "transcribing")
        request = await with_voices_ready(request, self.voices, self.scheduler, cancel=active.token)
        active.token.raise_if_cancelled()
        loop = asyncio.get_running_loop()
        engine_started = time.monotonic()

        def on_progress(fraction: float, stage: str, chunk_index: int, chunk_count: int) -> None:
            # Called in the worker thread: hand the update to the event loop without waiting.
            fraction = min(max(float(fraction), 0.0), 1.0)
            elapsed = time.monotonic() - engine_started
            eta = elapsed * (1.0 - fraction) / fraction if fraction >= 0.05 else None
            loop.call_soon_threadsafe(
                self.progress.update, job.id, engine_progress(fraction), stage, chunk_index, chunk_count, eta
            )

        return await anyio.to_thread.run_sync(synth.synthesize, request, on_progress, active.token)

    async def _store(self, job: Job, active: ActiveJob, result: SynthesisResult, started: float) -> None:
        """Encode and save the audio, then mark the job succeeded (the file goes if that fails)."""
        token = active.token
        token.raise_if_cancelled()
        self.progress.update(job.id, P_ENCODING, "encoding", job.chunk_count, job.chunk_count)
        fmt = job.request.format
        data = await anyio.to_thread.run_sync(self.encode, result.audio, result.sample_rate, fmt)
        token.raise_if_cancelled()
        self.progress.update(job.id, P_SAVING, "saving")
        try:
            stored = await anyio.to_thread.run_sync(self.storage.save, job.output_filename, data)
        except OSError as exc:  # nothing half-written stays (the storage removes its partial file)
            raise OutputWriteError(
                f"the audio was synthesised but its file could not be written: {exc.strerror or exc}"
                " (free space in F5VI_OUTPUT_DIR and submit again)"
            ) from exc
        try:
            token.raise_if_cancelled()
            try:
                await self._succeed(job, result, stored, started)
            except Exception as exc:
                if isinstance(exc, F5viError | InvalidTransitionError):
                    raise
                raise JobStoreWriteError(
                    f"the job database did not record the result ({type(exc).__name__}: {exc}); "
                    "submit the job again"
                ) from exc
        except BaseException as exc:
            # A lost lease leaves the file alone: the instance that took the job over writes the same name.
            if not isinstance(exc, LeaseLostError) and active.cancel_reason is not CancelReason.LEASE_LOST:
                with contextlib.suppress(Exception):
                    await anyio.to_thread.run_sync(self.storage.delete, job.output_filename)
            raise

    async def _succeed(self, job: Job, result: SynthesisResult, stored: StoredFile, started: float) -> None:
        fmt = job.request.format
        chunks = len(result.chunks)
        job_result = JobResult(
            filename=job.output_filename,
            format=fmt,
            media_type=FORMATS[fmt].content_type(result.sample_rate),
            size_bytes=stored.size_bytes,
            duration_seconds=round(result.duration_seconds, 3),
            sample_rate=result.sample_rate,
            seed=result.seed,
            reference_text=result.reference_text,
            normalized_text=result.normalized_text,
            chunk_count=chunks,
            processing_time_seconds=round(time.monotonic() - started, 3),
            warnings=list(result.warnings),
            timings={k: round(float(v), 4) for k, v in result.timings.items()},
            remote_url=stored.remote_url,
            remote_url_expires_at=stored.remote_url_expires_at,
            segments=[
                JobSegment(voice_id=s.voice_id or job.request.voice_id, chunk_count=s.chunk_count)
                for s in result.segments
            ],
            timestamps=result.timestamps.to_dict() if result.timestamps is not None else None,
            verification=None if result.verification is None else [v.as_dict() for v in result.verification],
        )
        await self.tracker.finish(  # not deferred: if the store refuses it, the output goes and the job fails
            job.id,
            JobState.SUCCEEDED,
            None,
            None,
            expected={JobState.RUNNING},
            defer=False,
            result=job_result,
            stage="done",
            chunk_index=chunks,
            chunk_count=chunks,
        )
        logger.info(
            "job %s succeeded: %.2fs audio in %.2fs",
            job.id,
            job_result.duration_seconds,
            job_result.processing_time_seconds,
        )

    async def _finish(
        self, job_id: str, state: JobState, code: str | None, message: str | None, **changes: Any
    ) -> Job:
        return await self.tracker.finish(
            job_id, state, code, message, expected={JobState.RUNNING, JobState.QUEUED}, **changes
        )

    async def _requeue_for_shutdown(self, job_id: str) -> None:
        """Graceful stop interrupted the job: back to the queue, not counted as an attempt."""
        job = await self.tracker.reload(job_id)
        await self.tracker.transition(
            job_id,
            JobState.QUEUED,
            expected={JobState.RUNNING},
            attempts=max(job.attempts - 1, 0),
            stage=None,
            eta_seconds=None,
        )
        logger.info("job %s interrupted by shutdown; it stays queued", job_id)
