"""Run a test list through the job system with one or two configurations, and measure every output.

Per configuration: the settings with its overrides; the engine (kept when the next configuration
needs the same model, vocoder and dtype: one copy in memory; otherwise the old one is dropped before
the next is loaded); a :class:`~f5vi.jobs.runtime.JobRuntime` over a work directory of its own, with
every utterance submitted as an ordinary job (same seeds in both configurations); once all have
ended, one engine-turn call transcribes every output (batched) and embeds it and its reference.
The speech recogniser and the speaker model are loaded once and shared by both configurations (and,
through the engine, by verification).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from f5vi.config import Settings
from f5vi.engine.asr import Transcriber
from f5vi.engine.loading import load_synthesizer
from f5vi.engine.speaker import SpeakerEncoder
from f5vi.engine.synthesizer import Synthesizer, make_transcriber
from f5vi.engine.text.canonical import character_error_rate, word_error_rate
from f5vi.errors import F5viError
from f5vi.evaluation.configs import ENGINE_KEYS, EvalConfig
from f5vi.evaluation.testlist import Utterance
from f5vi.jobs.models import Job
from f5vi.jobs.requests import TTSInput
from f5vi.jobs.runtime import JobRuntime
from f5vi.jobs.states import JobState
from f5vi.storage import LocalOutputStorage
from f5vi.voices.library import VoiceLibrary

logger = logging.getLogger(__name__)


@dataclass
class Row:
    """One utterance in one configuration."""

    config: str
    id: str
    category: str
    voice: str
    text: str
    status: str = "failed"
    error: str = ""
    normalized_text: str = ""
    transcript: str = ""
    cer: float | None = None
    wer: float | None = None
    speaker_similarity: float | None = None
    duration_seconds: float | None = None
    synthesis_seconds: float | None = None
    rtf: float | None = None
    chunks: int | None = None
    attempts: int | None = None
    """Chunk samplings (= chunks without verify)."""
    failed_chunks: int | None = None
    """With verify: chunks that ran out of attempts above the threshold."""
    seed: int | None = None
    audio: str = ""
    """Path of the output relative to the report directory."""


@dataclass
class ConfigRun:
    config: EvalConfig
    rows: list[Row]
    engine: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return summarize(self.rows)


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def summarize(rows: list[Row]) -> dict[str, Any]:
    """Aggregate figures of one configuration's rows (failed rows only count as failures)."""
    ok = [r for r in rows if r.status == "succeeded"]
    cers = [r.cer for r in ok if r.cer is not None]
    audio = sum(r.duration_seconds or 0.0 for r in ok)
    synth = sum(r.synthesis_seconds or 0.0 for r in ok)
    chunks = sum(r.chunks or 0 for r in ok)
    by_category: dict[str, list[float]] = {}
    for r in ok:
        if r.cer is not None:
            by_category.setdefault(r.category, []).append(r.cer)
    return {
        "utterances": len(rows),
        "succeeded": len(ok),
        "cer_mean": _mean(cers),
        "cer_median": round(statistics.median(cers), 4) if cers else None,
        "wer_mean": _mean([r.wer for r in ok if r.wer is not None]),
        "speaker_similarity_mean": _mean(
            [r.speaker_similarity for r in ok if r.speaker_similarity is not None]
        ),
        "audio_seconds": round(audio, 3),
        "synthesis_seconds": round(synth, 3),
        "rtf": round(synth / audio, 4) if audio else None,
        "chunks": chunks,
        "attempts": sum(r.attempts or 0 for r in ok),
        "attempts_per_chunk": round(sum(r.attempts or 0 for r in ok) / chunks, 4) if chunks else None,
        "failed_chunks": sum(r.failed_chunks or 0 for r in ok),
        "cer_by_category": {k: _mean(v) for k, v in sorted(by_category.items())},
    }


class Evaluator:
    """Runs configurations over a list (see the module docstring)."""

    def __init__(
        self, settings: Settings, out_dir: Path, *, demo_fallback: bool = False, seed: int = 0
    ) -> None:
        self.settings = settings.model_copy(update={"demo_fallback": demo_fallback or settings.demo_fallback})
        self.out_dir = Path(out_dir)
        self.demo_fallback = demo_fallback
        self.seed = seed
        self._synth: Synthesizer | None = None
        self._synth_key: tuple[Any, ...] | None = None
        self.asr: Transcriber | None = None
        self.speaker: SpeakerEncoder | None = None

    # ------------------------------------------------------------------ models
    def engine_for(self, settings: Settings) -> Synthesizer:
        """The engine for ``settings``: the loaded one if model, vocoder and dtype are the same."""
        key = tuple(getattr(settings, k) for k in ENGINE_KEYS)
        if self._synth is not None and key == self._synth_key:
            return self._synth
        self._synth = None  # one model in memory at a time
        gc.collect()
        synth = load_synthesizer(settings, demo_fallback=self.demo_fallback)
        self._synth, self._synth_key = synth, key
        demo = synth.info.is_demo or self.demo_fallback
        if self.asr is None:
            self.asr = make_transcriber(self.settings, synth.info.device, demo=demo)
        if self.speaker is None:
            demo_dir = self.settings.data_dir / "models" / "demo-speaker" if demo else None
            self.speaker = SpeakerEncoder(self.settings.speaker_model, synth.info.device, demo_dir=demo_dir)
        synth.transcriber = self.asr  # verification uses the same recogniser as the measurement
        return synth

    # ------------------------------------------------------------------ running
    def run(self, utterances: list[Utterance], configs: list[EvalConfig]) -> list[ConfigRun]:
        return [self.run_config(utterances, config) for config in configs]

    def run_config(self, utterances: list[Utterance], config: EvalConfig) -> ConfigRun:
        settings = config.settings(self.settings)
        started = time.perf_counter()
        synth = self.engine_for(settings)
        work = self.out_dir / "work" / config.name
        shutil.rmtree(work, ignore_errors=True)
        settings = settings.model_copy(
            update={
                "data_dir": work / "data",
                "output_dir": work / "output",
                "uploaded_voices_dir": work / "voices",
                "queue_max": max(settings.queue_max, len(utterances) + 8),
                "engine_concurrency": 1,  # one job at a time: each job's time is its own (RTF)
                "cleanup_interval_seconds": 0,
                "output_ttl_seconds": 7 * 24 * 3600.0,
            }
        )
        rows = asyncio.run(self._run_jobs(settings, synth, utterances, config))
        shutil.rmtree(work, ignore_errors=True)
        info = synth.info
        assert self.asr is not None and self.speaker is not None
        engine = {
            "model": info.model,
            "demo_model": info.is_demo,
            "device": info.device,
            "dtype": info.dtype,
            "asr_model": self.asr.model_id,
            "demo_asr": self.asr.is_demo,
            "speaker_model": self.speaker.model_id,
            "demo_speaker": self.speaker.is_demo,
            "nfe_step": settings.nfe_step,
            "use_epss": settings.use_epss,
            "verify": settings.verify,
            "verify_max_cer": settings.verify_max_cer,
            "verify_max_attempts": settings.verify_max_attempts,
        }
        return ConfigRun(config, rows, engine, round(time.perf_counter() - started, 3))

    async def _run_jobs(
        self, settings: Settings, synth: Synthesizer, utterances: list[Utterance], config: EvalConfig
    ) -> list[Row]:
        library = VoiceLibrary.from_settings(settings, self.asr)
        storage = LocalOutputStorage(settings.output_dir)
        rows = [Row(config.name, u.id, u.category, u.voice, u.text) for u in utterances]
        async with JobRuntime(settings, library, storage, synthesizer=synth) as runtime:
            jobs: list[Job | None] = []
            for index, (u, row) in enumerate(zip(utterances, rows, strict=True)):
                try:
                    params = TTSInput(text=u.text, ref_name=u.voice, seed=self.seed + index, format="wav")
                    jobs.append(await runtime.manager.submit(params))
                except F5viError as exc:
                    row.error = f"{exc.code}: {exc.message}"
                    jobs.append(None)
            finished: list[Job | None] = []
            for job in jobs:
                finished.append(None if job is None else await runtime.manager.wait(job.id))
            audio_dir = self.out_dir / "audio" / config.name
            audio_dir.mkdir(parents=True, exist_ok=True)
            for row, job in zip(rows, finished, strict=True):
                if job is not None:
                    self._take_job(row, job, storage, audio_dir)
            done = [(r, library.resolve(r.voice).audio_path) for r in rows if r.status == "succeeded"]
            await runtime.scheduler.run_call(lambda: self._measure(done))
        return rows

    def _take_job(self, row: Row, job: Job, storage: LocalOutputStorage, audio_dir: Path) -> None:
        if job.state is not JobState.SUCCEEDED or job.result is None:
            row.error = f"{job.error_code}: {job.error_message}"
            return
        result = job.result
        source = storage.local_path(result.filename)
        assert source is not None
        target = audio_dir / f"{row.id}.wav"
        shutil.copyfile(source, target)
        row.audio = str(target.relative_to(self.out_dir))
        row.status = "succeeded"
        row.normalized_text = result.normalized_text
        row.duration_seconds = result.duration_seconds
        row.synthesis_seconds = result.processing_time_seconds
        row.rtf = round(result.processing_time_seconds / max(result.duration_seconds, 1e-9), 4)
        row.chunks = result.chunk_count
        row.seed = result.seed
        if result.verification is not None:
            row.attempts = sum(int(v["attempts"]) for v in result.verification)
            row.failed_chunks = sum(1 for v in result.verification if not v["passed"])
        else:
            row.attempts = result.chunk_count

    def _measure(self, done: list[tuple[Row, Path]]) -> None:
        """In the engine's turn: transcribe every output (batched), embed it and its reference."""
        assert self.asr is not None and self.speaker is not None
        if not done:
            return
        waves = [sf.read(self.out_dir / row.audio, dtype="float32") for row, _ in done]
        transcripts = self.asr.transcribe_many([w for w, _ in waves], waves[0][1])
        references: dict[Path, np.ndarray] = {}
        for (row, ref_path), (wave, rate), heard in zip(done, waves, transcripts, strict=True):
            row.transcript = heard
            row.cer = round(character_error_rate(row.normalized_text, heard), 4)
            row.wer = round(word_error_rate(row.normalized_text, heard), 4)
            if ref_path not in references:
                ref, ref_rate = sf.read(ref_path, dtype="float32")
                references[ref_path] = self.speaker.embed(ref, ref_rate)
            row.speaker_similarity = round(
                float(np.dot(self.speaker.embed(wave, rate), references[ref_path])), 4
            )


def rows_as_dicts(runs: list[ConfigRun]) -> list[dict[str, Any]]:
    return [asdict(row) for run in runs for row in run.rows]
