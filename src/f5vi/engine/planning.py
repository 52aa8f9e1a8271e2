"""Text + reference -> the chunks the model will read and how long each will sound.

Everything synthesis decides before the first ODE step, except the seed: normalise the text and the
reference transcript, prepare the reference clip, size the chunks from the reference's speaking rate
(upstream's budget) and give each chunk upstream's duration. :class:`~f5vi.engine.synthesizer.Synthesizer`
plans every request through :meth:`TextPlanner.plan`, and so does the normalisation preview
(``POST /normalize``, ``f5vi normalize``): the preview cannot drift from what synthesis does.

Planning runs no model: a :class:`TextPlanner` needs the vocab, the vinorm runner and a reference
cache, all safe to use from several threads, so a preview never waits for a running synthesis.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from f5vi.config import Settings
from f5vi.engine.audio import cross_fade_overlaps
from f5vi.engine.batching import ChunkPlan
from f5vi.engine.checkpoint import resolve_vocab_path
from f5vi.engine.chunking import chunk_text, estimate_duration_frames, max_chars_for_reference
from f5vi.engine.errors import InvalidReferenceError, InvalidTextError
from f5vi.engine.reference import ReferenceCache, ReferenceConditioning
from f5vi.engine.text import normalize_text, prepare_ref_text, ref_text_for_model
from f5vi.engine.types import HOP_LENGTH, SAMPLE_RATE, SynthesisRequest
from f5vi.engine.validation import validate_request
from f5vi.engine.vinorm_runner import VinormRunner
from f5vi.engine.vocab import Vocab

MAX_FRAMES_PER_CHUNK = 4096  # upstream's max_duration: ~43.7 s of reference + generated audio


@dataclass(frozen=True)
class TextPlan:
    """What the model will be given for one request (see the module docstring)."""

    normalized_text: str
    normalizer_used: str
    """vinorm, hamster (chosen, or the fallback when vinorm failed) or none."""
    reference_text: str
    """The normalised transcript exactly as it is put in front of every chunk."""
    reference: ReferenceConditioning
    max_chunk_bytes: int
    """Upstream's chunk budget for this reference and speed (UTF-8 bytes)."""
    chunks: tuple[ChunkPlan, ...]
    warnings: tuple[str, ...]

    def generated_frames(self, chunk: ChunkPlan) -> int:
        """Mel frames the model generates for ``chunk`` (its duration minus the reference)."""
        return max(chunk.duration_frames - self.reference.audio_frames, 0)

    def chunk_seconds(self, chunk: ChunkPlan) -> float:
        return self.generated_frames(chunk) * HOP_LENGTH / SAMPLE_RATE

    def estimated_seconds(self, cross_fade_seconds: float) -> float:
        """Length of the joined audio: every chunk's audio less the overlap of each cross-fade.

        The model generates exactly the planned frames unless a chunk has more text tokens than
        frames (the sampler then lengthens it), so this is the output length up to a frame per chunk.
        """
        samples = [self.generated_frames(c) * HOP_LENGTH for c in self.chunks]
        overlaps = cross_fade_overlaps(samples, SAMPLE_RATE, cross_fade_seconds)
        return (sum(samples) - sum(overlaps)) / SAMPLE_RATE


class TextPlanner:
    """Owns what planning needs: vocab, normaliser runner, prepared references."""

    def __init__(
        self,
        vocab: Vocab,
        settings: Settings,
        references: ReferenceCache,
        vinorm: VinormRunner | None = None,
    ) -> None:
        self.vocab = vocab
        self.settings = settings
        self.references = references
        self.vinorm = vinorm or VinormRunner()

    @classmethod
    def from_settings(cls, settings: Settings) -> TextPlanner:
        """A planner for the configured model without loading its weights (the vocab is enough).

        For the command line: previews in a second instead of the seconds a full engine load takes.
        """
        vocab_path: Path = resolve_vocab_path(
            settings.model, checkpoint_file=settings.checkpoint_file, vocab_file=settings.vocab_file
        )
        references = ReferenceCache(
            device=torch.device("cpu"),
            max_seconds=settings.max_reference_seconds,
            target_rms=settings.target_rms,
        )
        return cls(Vocab.from_file(vocab_path), settings, references)

    def plan(self, request: SynthesisRequest) -> TextPlan:
        """Validate ``request``, then normalise, prepare the reference, chunk and size it."""
        validate_request(request, self.settings.max_text_chars)
        if request.reference.transcript is None:
            raise InvalidReferenceError(
                "the reference voice has no transcript; transcribe it first (the voice library does this)"
            )
        normalizer = self.settings.normalizer if request.normalize_text else "none"
        warnings: list[str] = []
        gen = normalize_text(request.text, normalizer=normalizer, vocab=self.vocab, vinorm=self.vinorm)
        warnings.extend(gen.warnings)
        ref_norm = normalize_text(
            request.reference.transcript, normalizer=normalizer, vocab=self.vocab, vinorm=self.vinorm
        )
        warnings.extend(f"reference transcript: {w}" for w in ref_norm.warnings)
        reference = self.references.get(request.reference.audio_path)
        # Upstream sizes chunks from the transcript before its final extra space, and puts the
        # spaced form in front of every chunk; keep both for byte-exact budgets and durations.
        budget_text = prepare_ref_text(ref_norm.text)
        reference_text = ref_text_for_model(budget_text)

        max_chars = max_chars_for_reference(budget_text, reference.num_samples, SAMPLE_RATE, request.speed)
        texts = chunk_text(gen.text, max_chars)
        if not texts:
            raise InvalidTextError("nothing to say after normalisation")
        chunks: list[ChunkPlan] = []
        for index, text in enumerate(texts):
            frames = estimate_duration_frames(reference_text, reference.audio_frames, text, request.speed)
            if frames > MAX_FRAMES_PER_CHUNK:
                warnings.append(
                    f"chunk {index + 1} is long ({frames} frames); it was capped at {MAX_FRAMES_PER_CHUNK}"
                )
                frames = MAX_FRAMES_PER_CHUNK
            chunks.append(ChunkPlan(index=index, text=text, duration_frames=frames))
        return TextPlan(
            normalized_text=gen.text,
            normalizer_used=gen.normalizer_used,
            reference_text=reference_text,
            reference=reference,
            max_chunk_bytes=max_chars,
            chunks=tuple(chunks),
            warnings=tuple(dict.fromkeys(warnings)),
        )
