"""Text + reference voice -> audio: the one entry point the job system and the CLI call.

Pipeline per request: validate -> split by voice tags -> normalise text -> prepare references
(cached) -> chunk -> sample the chunks' ODEs (:class:`~f5vi.engine.shared_sampler.SharedSampler`,
where they share batches with the chunks of other requests running at the same time) -> vocode ->
restore loudness (each chunk its own voice's) -> cross-fade.
Blocking and CPU/GPU bound: callers run it off their event loop; several requests may run at once,
each in its own thread (only the ODE goes through the one sampling thread).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from f5vi.config import DEFAULT_VOCODER, Settings
from f5vi.engine.allocator import tune_glibc_malloc
from f5vi.engine.asr import Transcriber
from f5vi.engine.audio import cross_fade_concat, join_with_pauses
from f5vi.engine.batching import ChunkPlan
from f5vi.engine.checkpoint import LoadedModel, load_model
from f5vi.engine.demo import demo_vocoder_dir
from f5vi.engine.device import resolve_device, resolve_dtype
from f5vi.engine.ode_batch import OdeItem, make_item
from f5vi.engine.planning import TextPlan, TextPlanner
from f5vi.engine.progress import ProgressTracker
from f5vi.engine.reference import ReferenceCache, ReferenceConditioning
from f5vi.engine.shared_sampler import SharedSampler
from f5vi.engine.text.vinorm_runner import VinormRunner
from f5vi.engine.text.vocab import Vocab
from f5vi.engine.timing.build import Timekeeper
from f5vi.engine.timing.types import TimedWord, Timestamps
from f5vi.engine.types import (
    SAMPLE_RATE,
    CancelToken,
    ChunkVerification,
    ProgressCallback,
    SegmentSummary,
    SynthesisRequest,
    SynthesisResult,
    VerifyOptions,
)
from f5vi.engine.verify import ChunkBest, Scorer, attempt_seed
from f5vi.engine.vocoders import MelVocoder, check_pairing, load_mel_vocoder

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class EngineInfo:
    model: str
    arch: str
    is_demo: bool
    device: str
    dtype: str
    sample_rate: int
    vocoder: str
    num_params: int
    vocoder_type: str = "vocos"
    """"vocos" | "bigvgan": the vocoder loaded, which is also the checkpoint's mel front end."""


@dataclass(frozen=True)
class _Plan:
    """Everything decided before the first ODE step of a request: its text plan and its seed."""

    seed: int
    text: TextPlan

    @property
    def chunks(self) -> tuple[ChunkPlan, ...]:
        return self.text.chunks

    def reference(self, chunk: ChunkPlan) -> ReferenceConditioning:
        """The reference of ``chunk``'s voice (each voice segment has its own)."""
        return self.text.segment_of(chunk).reference

    def output_gain(self, index: int) -> float:
        return self.reference(self.text.chunks[index]).output_gain

    @property
    def segments(self) -> list[SegmentSummary]:
        return [SegmentSummary(s.voice_id, s.chunk_count) for s in self.text.segments]


class Synthesizer:
    """Owns the loaded model, vocoder, vocab and reference cache of one process."""

    def __init__(
        self,
        model: LoadedModel,
        vocoder: MelVocoder,
        vocab: Vocab,
        settings: Settings,
        *,
        device: torch.device,
        dtype: torch.dtype,
        model_source: str,
        vocoder_source: str,
    ) -> None:
        check_pairing(model.mel_spec_type, vocoder, vocoder_source, model_source)
        self.model = model
        # batched chunks must each sound as they would alone (see FlowBackbone.set_attention_masking)
        model.cfm.transformer.set_attention_masking(True)
        self.vocoder = vocoder
        self.vocab = vocab
        self.settings = settings
        self.device = device
        self.dtype = dtype
        self.references = ReferenceCache(
            device=device,
            max_seconds=settings.max_reference_seconds,
            target_rms=settings.target_rms,
            mel_spec_type=model.mel_spec_type,
        )
        self.vinorm = VinormRunner()
        self.planner = TextPlanner(vocab, settings, self.references, self.vinorm)
        self.timekeeper = Timekeeper(settings.aligner_model)
        self.sampler = SharedSampler(model.cfm, settings.max_batch_frames or default_max_batch_frames(device))
        self._vocoder_lock = threading.Lock()  # one vocoder call at a time: bounded memory and threads
        self.transcriber: Transcriber | None = None
        """The process's speech recogniser (shared with the voice library); made on first verify."""
        self._transcriber_lock = threading.Lock()
        self.info = EngineInfo(
            model=model_source,
            arch=model.arch_name,
            is_demo=model.is_demo,
            device=str(device),
            dtype=str(dtype).removeprefix("torch."),
            sample_rate=SAMPLE_RATE,
            vocoder=vocoder_source,
            num_params=model.num_params,
            vocoder_type=vocoder.kind,
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_settings(cls, settings: Settings) -> Synthesizer:
        """Load checkpoint, vocab and vocoder as the settings say (blocking, seconds to minutes)."""
        device = resolve_device(settings.device)
        dtype = resolve_dtype(settings.dtype, device)
        tune_glibc_malloc()
        started = time.perf_counter()
        model = load_model(
            settings.model,
            arch=settings.model_arch,
            checkpoint_file=settings.checkpoint_file,
            vocab_file=settings.vocab_file,
            device=device,
            dtype=dtype,
        )
        checkpoint_dtype = dtype_for_checkpoint(settings.dtype, dtype, model.mel_spec_type)
        if checkpoint_dtype != dtype:
            model.cfm.to(dtype=checkpoint_dtype)
            model.dtype = dtype = checkpoint_dtype
        vocoder_source = _vocoder_source(settings, model.is_demo)
        vocoder = load_mel_vocoder(vocoder_source, device=device)
        vocab = Vocab.from_file(model.vocab_path)
        logger.info(
            "engine loaded in %.1fs: model=%s arch=%s%s device=%s dtype=%s vocoder=%s (%s)",
            time.perf_counter() - started,
            settings.model,
            model.arch_name,
            " (DEMO: random weights, produces noise)" if model.is_demo else "",
            device,
            dtype,
            vocoder_source,
            vocoder.kind,
        )
        return cls(
            model,
            vocoder,
            vocab,
            settings,
            device=device,
            dtype=dtype,
            model_source=settings.model,
            vocoder_source=vocoder_source,
        )

    @property
    def max_batch_frames(self) -> int:
        """Frame budget of one ODE batch (``len(batch) x longest item``), shared by all requests."""
        return self.sampler.max_batch_frames

    @max_batch_frames.setter
    def max_batch_frames(self, value: int) -> None:
        self.sampler.max_batch_frames = max(1, int(value))

    # ------------------------------------------------------------------ public API
    def synthesize(
        self,
        request: SynthesisRequest,
        on_progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> SynthesisResult:
        """Synthesise the whole text; its chunks are sampled together (and with other requests')."""
        started = time.perf_counter()
        tracker = ProgressTracker(on_progress)
        plan = self._plan(request, tracker)
        timings = {"prepare_seconds": time.perf_counter() - started}
        mels: dict[int, torch.Tensor] = {}
        for index, mel in self._sample(request, plan, tracker, cancel, stream=False):
            mels[index] = mel
        tracker.update_stage("vocoding", len(mels), len(plan.chunks))
        count = len(plan.chunks)
        waves = self._vocode([mels[i] for i in range(count)], [plan.output_gain(i) for i in range(count)])
        verification: list[ChunkVerification] | None = None
        warnings = list(plan.text.warnings)
        if request.verify is not None:
            verify_started = time.perf_counter()
            scorer = Scorer(self.asr())
            bests = self._verify(request, plan, dict(enumerate(waves)), tracker, cancel, scorer, stream=False)
            waves = [bests[i].best.wave for i in range(count)]
            verification = [bests[i].report(i, request.verify) for i in range(count)]
            timings["verify_seconds"] = time.perf_counter() - verify_started
            timings["asr_seconds"] = scorer.seconds
            if scorer.transcriber.is_demo:
                warnings.append(DEMO_ASR_WARNING)
        pauses = [plan.text.pause_before(chunk) for chunk in plan.chunks]
        audio = join_with_pauses(
            waves, pauses, SAMPLE_RATE, request.cross_fade_seconds, plan.text.trailing_pause_seconds
        )
        timed = time.perf_counter()
        try:  # from the waves that are kept (a verified chunk's best attempt)
            timestamps: Timestamps | None = self.timekeeper.timestamps(
                plan.text, waves, SAMPLE_RATE, request.cross_fade_seconds
            )
        except Exception:  # the audio is good: a timing bug must not cost the client the result
            logger.exception("timestamps failed; the result goes out without them")
            timestamps = None
            warnings.append("timestamps could not be computed for this result")
        timings["timestamps_seconds"] = time.perf_counter() - timed
        timings["total_seconds"] = time.perf_counter() - started
        tracker.finish(len(plan.chunks))
        return SynthesisResult(
            audio=audio.astype(np.float32, copy=False),
            sample_rate=SAMPLE_RATE,
            seed=plan.seed,
            chunks=[c.text for c in plan.chunks],
            normalized_text=plan.text.normalized_text,
            reference_text=plan.text.reference_text,
            reference_seconds=plan.text.reference.seconds,
            warnings=warnings,
            timings=timings,
            segments=plan.segments,
            timestamps=timestamps,
            verification=verification,
        )

    def stream(
        self,
        request: SynthesisRequest,
        on_progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        on_words: Callable[[list[TimedWord]], None] | None = None,
        on_verified: Callable[[ChunkVerification], None] | None = None,
    ) -> Iterator[np.ndarray]:
        """Yield the audio in text order as soon as each part is ready (first chunk on its own; a
        text of one chunk is planned as two, the first about a third, so audio leaves early).

        Consecutive pieces are cross-faded exactly as :meth:`synthesize` does: the tail of each
        piece is held back until the next piece arrives, so concatenating the yielded arrays
        gives the same waveform as a non-streamed call with the same batches. ``on_words`` gets
        each chunk's timed words (seconds of the whole stream) before any of its audio is yielded.

        With verification on, a chunk is sent once it passed or ran out of attempts
        (``on_verified`` hears how each chunk did, in the order they are settled).
        """
        tracker = ProgressTracker(on_progress)
        plan = self._plan(request, tracker, short_first=True)  # a one-chunk text: its first part early
        timer = (
            self.timekeeper.streamed(plan.text, SAMPLE_RATE, request.cross_fade_seconds)
            if on_words is not None
            else None
        )
        fade = int(request.cross_fade_seconds * SAMPLE_RATE)
        held: np.ndarray | None = None
        ready: dict[int, np.ndarray] = {}
        next_index = 0
        scorer = Scorer(self.asr()) if request.verify is not None else None
        for index, mel in self._sample(request, plan, tracker, cancel, stream=True):
            wave = self._vocode([mel], [plan.output_gain(index)])[0]
            if scorer is not None:  # a chunk leaves once it passed or ran out of attempts
                best = self._verify(request, plan, {index: wave}, tracker, cancel, scorer, stream=True)[index]
                wave = best.best.wave
                if on_verified is not None:
                    assert request.verify is not None
                    on_verified(best.report(index, request.verify))
            ready[index] = wave
            tracker.chunk_done(len(ready) + next_index, len(plan.chunks))
            while next_index in ready:  # chunks can finish out of order; audio leaves in text order
                wave = ready.pop(next_index)
                pause = round(plan.text.pause_before(plan.chunks[next_index]) * SAMPLE_RATE)
                if timer is not None and on_words is not None:
                    on_words(timer.chunk_ready(next_index, wave))
                next_index += 1
                if pause > 0:  # a <break>: what is held leaves unfaded, then the silence
                    if held is not None and len(held):
                        yield held.astype(np.float32, copy=False)
                    yield np.zeros(pause, dtype=np.float32)
                    held = None
                if held is None:
                    # Only the tail that the next piece fades into must wait; send the rest now
                    # so the first audio leaves as soon as the first chunk is vocoded.
                    keep = min(fade, len(wave))
                    emit, held = wave[: len(wave) - keep], wave[len(wave) - keep :]
                else:
                    joined = cross_fade_concat([held, wave], SAMPLE_RATE, request.cross_fade_seconds)
                    keep = min(fade, len(wave))
                    emit, held = joined[: len(joined) - keep], joined[len(joined) - keep :]
                if len(emit):
                    yield emit.astype(np.float32, copy=False)
        if held is not None and len(held):
            yield held.astype(np.float32, copy=False)
        trailing = round(plan.text.trailing_pause_seconds * SAMPLE_RATE)
        if trailing > 0:
            yield np.zeros(trailing, dtype=np.float32)
        tracker.finish(len(plan.chunks))

    def run_between_steps(self, fn: Callable[[], T], cancel: CancelToken | None = None) -> T:
        """Run other model work (ASR, freeing memory) between two ODE steps of the running requests
        (blocking; see :meth:`SharedSampler.call`): it never overlaps a step and waits for none to end."""
        return self.sampler.call(fn, cancel=cancel)

    def free_memory(self) -> dict[str, float]:
        """Drop cached references and return cached allocator blocks to the driver."""
        self.references.clear()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return self.memory_stats()

    def memory_stats(self) -> dict[str, float]:
        stats: dict[str, float] = {"cached_references": float(len(self.references))}
        if self.device.type == "cuda":
            stats.update(
                allocated_bytes=float(torch.cuda.memory_allocated(self.device)),
                reserved_bytes=float(torch.cuda.memory_reserved(self.device)),
                max_allocated_bytes=float(torch.cuda.max_memory_allocated(self.device)),
                total_bytes=float(torch.cuda.get_device_properties(self.device).total_memory),
            )
        return stats

    # ------------------------------------------------------------------ internals
    def plan(self, request: SynthesisRequest) -> TextPlan:
        """Validate ``request`` and plan its text exactly as :meth:`synthesize` will (no model work).

        Takes no lock: the normalisation preview calls it while another request is synthesising.
        """
        return self.planner.plan(request)

    def _plan(
        self, request: SynthesisRequest, tracker: ProgressTracker, *, short_first: bool = False
    ) -> _Plan:
        text_plan = self.planner.plan(
            request, on_valid=lambda: tracker.update(0.0, "normalizing", 0, 0), short_first=short_first
        )
        seed = request.seed if request.seed is not None else random.randrange(2**32)
        return _Plan(seed=seed, text=text_plan)

    def _items(self, request: SynthesisRequest, plan: _Plan) -> list[OdeItem]:
        """One ODE per chunk, each seeded with the request's seed (as upstream seeds every chunk).

        A chunk is conditioned on its own voice segment's reference mel and transcript.
        """
        return [self._item(request, plan, chunk, plan.seed) for chunk in plan.chunks]

    def _item(self, request: SynthesisRequest, plan: _Plan, chunk: ChunkPlan, seed: int) -> OdeItem:
        return make_item(
            self.model.cfm,
            plan.reference(chunk).mel[0],  # fp32 [frames, 100]: the sampler casts what the backbone sees
            self.vocab.encode([plan.text.segment_of(chunk).reference_text + chunk.text])[0],
            chunk.duration_frames,
            steps=request.nfe_step,
            cfg_strength=request.cfg_strength,
            sway_sampling_coef=request.sway_sampling_coef,
            method=request.ode_method,  # type: ignore[arg-type]
            seed=seed,
            use_epss=request.use_epss,
        )

    def asr(self) -> Transcriber:
        """The process's speech recogniser: the attached one (the voice library's), else one made now
        from the settings (with the demo recogniser as fallback when the demo fallback is on)."""
        with self._transcriber_lock:
            if self.transcriber is None:
                self.transcriber = make_transcriber(self.settings, self.info.device, demo=self.info.is_demo)
            return self.transcriber

    def _verify(
        self,
        request: SynthesisRequest,
        plan: _Plan,
        waves: dict[int, np.ndarray],
        tracker: ProgressTracker,
        cancel: CancelToken | None,
        scorer: Scorer,
        *,
        stream: bool,
    ) -> dict[int, ChunkBest]:
        """Score the first attempts of chunks ``waves``; sample those over the threshold again (all
        of them together, one round per attempt) until each passed or ran out of attempts."""
        options: VerifyOptions = request.verify or VerifyOptions()
        chunks = plan.chunks
        order = sorted(waves)
        tracker.verifying()
        texts = [chunks[i].text for i in order]
        first = scorer.score([waves[i] for i in order], texts, [plan.seed] * len(order))
        bests = {i: ChunkBest(a) for i, a in zip(order, first, strict=True)}
        attempt = 1
        while todo := [i for i in order if not bests[i].done(options)]:
            if cancel is not None:
                cancel.raise_if_cancelled()  # between attempts
            attempt += 1
            seeds = [attempt_seed(plan.seed, i, attempt) for i in todo]
            items = [self._item(request, plan, chunks[i], seed) for i, seed in zip(todo, seeds, strict=True)]
            offset = tracker.add_attempts([item.duration for item in items])

            def on_step(k: int, step: int, total: int, offset: int = offset) -> None:
                tracker.step(offset + k, step, total)

            mels: dict[int, torch.Tensor] = {}
            for k, out in self.sampler.run(items, cancel=cancel, on_step=on_step, stream=stream):
                mels[k] = out[plan.reference(chunks[todo[k]]).audio_frames :].float()
            new = self._vocode([mels[k] for k in range(len(todo))], [plan.output_gain(i) for i in todo])
            tracker.verifying()
            for i, scored in zip(todo, scorer.score(new, [chunks[i].text for i in todo], seeds), strict=True):
                bests[i].offer(scored)
        return bests

    def _sample(
        self,
        request: SynthesisRequest,
        plan: _Plan,
        tracker: ProgressTracker,
        cancel: CancelToken | None,
        *,
        stream: bool,
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """Generated mels ``[frames, 100]`` of the chunks, as they finish: ``(chunk index, mel)``."""
        items = self._items(request, plan)
        tracker.plan_work([item.duration for item in items], total_chunks=len(items))
        skips = [plan.reference(chunk).audio_frames for chunk in plan.chunks]
        for index, out in self.sampler.run(items, cancel=cancel, on_step=tracker.step, stream=stream):
            yield index, out[skips[index] :].float()

    @torch.inference_mode()
    def _vocode(self, mels: list[torch.Tensor], output_gains: list[float]) -> list[np.ndarray]:
        """Decode generated mels (``[T, 100]`` each); equal lengths share a batched call.

        Each wave is scaled by its own gain: the loudness of the reference its chunk was said with.
        """
        with self._vocoder_lock:
            waves = self.vocoder.decode_many([mel.transpose(0, 1) for mel in mels])
        return [
            (wave.float().cpu().numpy() * gain).astype(np.float32)
            for wave, gain in zip(waves, output_gains, strict=True)
        ]


def dtype_for_checkpoint(requested: str, resolved: torch.dtype, mel_spec_type: str) -> torch.dtype:
    """The DiT's dtype: upstream loads a BigVGAN-mel checkpoint in fp32 even on GPUs (``load_model``:
    ``dtype = float32 if mel_spec_type == "bigvgan"``), so ``F5VI_DTYPE=auto`` does too; an explicit
    ``F5VI_DTYPE`` is kept."""
    if requested == "auto" and mel_spec_type == "bigvgan":
        return torch.float32
    return resolved


DEMO_ASR_WARNING = (
    "DEMO speech recogniser: random weights, its transcripts are garbage, so every chunk fails verification; "
    "set F5VI_ASR_MODEL to PhoWhisper"
)


def make_transcriber(settings: Settings, device: str, *, demo: bool = False) -> Transcriber:
    """The speech recogniser of ``settings`` on ``device``; with the demo fallback on (or a demo
    model loaded) it falls back to the demo recogniser (random weights, flagged) if it cannot load."""
    demo_dir = demo_asr_dir(settings) if (settings.demo_fallback or demo) else None
    return Transcriber(settings.asr_model, device=device, demo_dir=demo_dir)


def demo_asr_dir(settings: Settings) -> Path:
    """Where the demo recogniser is made (beside the demo model's default place)."""
    return settings.data_dir / "models" / "demo-asr"


def default_max_batch_frames(device: torch.device) -> int:
    """How many frames (batch x padded length) one ODE batch may hold when settings leave it unset.

    On a GPU one batch of B chunks costs about as much wall time as one chunk, so chunks (of one
    request and of requests running at the same time) share a batch. On CPU the work is
    compute-bound and padding is pure loss: one chunk at a time measured ~25 % faster
    (``bench/RESULTS.md``, small config, 3-chunk paragraph).
    """
    return 16_384 if device.type == "cuda" else 1


def _vocoder_source(settings: Settings, is_demo: bool) -> str:
    """The configured vocoder; for a demo model left with the default (hub) vocoder, the random vocoder
    bundled in its ``vocos/`` (or ``bigvgan/``) folder, so ``F5VI_MODEL=<demo dir>`` alone works offline."""
    bundled = demo_vocoder_dir(Path(settings.model).expanduser())
    if is_demo and settings.vocoder == DEFAULT_VOCODER and bundled.is_dir():
        return str(bundled)
    return settings.vocoder
