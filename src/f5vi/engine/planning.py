"""Text + reference -> the chunks the model will read and how long each will sound.

Everything synthesis decides before the first ODE step, except the seed: normalise the text and the
reference transcript, prepare the reference clip, size the chunks from the reference's speaking rate
(upstream's budget) and give each chunk upstream's duration. :class:`~f5vi.engine.synthesizer.Synthesizer`
plans every request through :meth:`TextPlanner.plan`, and so does the normalisation preview
(``POST /normalize``, ``f5vi normalize``): the preview cannot drift from what synthesis does.

A text with voice tags (:mod:`f5vi.engine.text.voice_tags`) is planned segment by segment, each exactly as
a text of its own with its own voice would be (own normalisation, chunk budget and durations), so a
multi-voice result is the cross-fade of what its segments would sound like alone.

Planning runs no model: a :class:`TextPlanner` needs the vocab, the vinorm runner and a reference
cache, all safe to use from several threads, so a preview never waits for a running synthesis.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from f5vi.config import Settings
from f5vi.engine.audio import cross_fade_overlaps
from f5vi.engine.batching import ChunkPlan
from f5vi.engine.checkpoint import resolve_vocab_path
from f5vi.engine.errors import InvalidReferenceError, InvalidTextError
from f5vi.engine.reference import ReferenceCache, ReferenceConditioning
from f5vi.engine.text.chunking import chunk_text, estimate_duration_frames, max_chars_for_reference
from f5vi.engine.text.lexicon import LexiconHit
from f5vi.engine.text.normalizer import (
    NormalizedText,
    NormalizerName,
    TextNotSayableError,
    normalize_texts,
    prepare_ref_text,
    ref_text_for_model,
)
from f5vi.engine.text.script import parse_script
from f5vi.engine.text.segments import SpeechSegment
from f5vi.engine.text.spans import SourcePiece, join_pieces
from f5vi.engine.text.vinorm_runner import VinormRunner
from f5vi.engine.text.vocab import Vocab
from f5vi.engine.types import HOP_LENGTH, SAMPLE_RATE, SynthesisRequest
from f5vi.engine.validation import SPEED_RANGE, validate_request

MAX_FRAMES_PER_CHUNK = 4096  # upstream's max_duration: ~43.7 s of reference + generated audio
FIRST_PART_MIN_BYTES = 24
"""A stream's one-chunk text is not cut into a first part shorter than this (a few words)."""


@dataclass(frozen=True)
class SegmentPlan:
    """One voice's stretch of the text: its reference as the model gets it, its budget, its chunks."""

    voice_id: str | None
    """The voice library id of the reference (None when the caller gave a bare reference)."""
    reference: ReferenceConditioning
    reference_text: str
    """The voice's normalised transcript exactly as it is put in front of each of its chunks."""
    normalized_text: str
    max_chunk_bytes: int
    """Upstream's chunk budget for this voice's reference and the speed (UTF-8 bytes)."""
    first_chunk: int
    chunk_count: int
    speed: float = 1.0
    """The speed this segment is said at: the request's times its ``<prosody rate>``."""
    pause_before_seconds: float = 0.0
    """Silence inserted before the segment's first chunk (``<break>``)."""
    pieces: tuple[SourcePiece, ...] = ()
    """What the normaliser was given, piece by piece, with spans in the submitted text."""
    lexicon_hits: tuple[LexiconHit, ...] = ()
    written: tuple[SourcePiece, ...] = ()
    """The segment as written (before the lexicons): what subtitles show, with its spans."""

    @property
    def char_start(self) -> int:
        return min((p.char_start for p in self.pieces), default=0)

    @property
    def char_end(self) -> int:
        return max((p.char_end for p in self.pieces), default=0)


@dataclass(frozen=True)
class TextPlan:
    """What the model will be given for one request (see the module docstring).

    A text with voice tags has several :attr:`segments`; the fields that name one reference
    (``reference``, ``reference_text``, ``max_chunk_bytes``) are those of the first segment, which
    for a text without tags is all of it.
    """

    normalized_text: str
    """The segments' normalised texts joined by spaces (without the tags)."""
    normalizer_used: str
    """vinorm, hamster (chosen, or the fallback when vinorm failed) or none."""
    reference_text: str
    """The normalised transcript exactly as it is put in front of every chunk (of the first segment)."""
    reference: ReferenceConditioning
    max_chunk_bytes: int
    """Upstream's chunk budget for this reference and speed (UTF-8 bytes)."""
    chunks: tuple[ChunkPlan, ...]
    warnings: tuple[str, ...]
    segments: tuple[SegmentPlan, ...]
    trailing_pause_seconds: float = 0.0
    """Silence after the last chunk (a ``<break>`` at the end of an SSML document)."""
    ssml: bool = False

    @property
    def lexicon_hits(self) -> tuple[LexiconHit, ...]:
        return tuple(hit for segment in self.segments for hit in segment.lexicon_hits)

    def pause_before(self, chunk: ChunkPlan) -> float:
        """Silence before ``chunk``: its segment's pause if it is the segment's first chunk."""
        segment = self.segment_of(chunk)
        return segment.pause_before_seconds if chunk.index == segment.first_chunk else 0.0

    def segment_of(self, chunk: ChunkPlan) -> SegmentPlan:
        return self.segments[chunk.segment]

    def generated_frames(self, chunk: ChunkPlan) -> int:
        """Mel frames the model generates for ``chunk`` (its duration minus its voice's reference)."""
        return max(chunk.duration_frames - self.segment_of(chunk).reference.audio_frames, 0)

    def chunk_seconds(self, chunk: ChunkPlan) -> float:
        return self.generated_frames(chunk) * HOP_LENGTH / SAMPLE_RATE

    def estimated_seconds(self, cross_fade_seconds: float) -> float:
        """Length of the joined audio: every chunk's audio less the overlap of each cross-fade.

        The model generates exactly the planned frames unless a chunk has more text tokens than
        frames (the sampler then lengthens it), so this is the output length up to a frame per chunk.
        """
        samples = self.planned_samples()
        overlaps = cross_fade_overlaps(samples, SAMPLE_RATE, cross_fade_seconds)
        # no cross-fade across a pause: the pause separates the audio on both sides
        overlaps = [0 if self.pause_before(self.chunks[i + 1]) else o for i, o in enumerate(overlaps)]
        pauses = sum(round(self.pause_before(c) * SAMPLE_RATE) for c in self.chunks)
        pauses += round(self.trailing_pause_seconds * SAMPLE_RATE)
        return (sum(samples) - sum(overlaps) + pauses) / SAMPLE_RATE

    def planned_samples(self) -> list[int]:
        """Samples each chunk's generated audio will have (its planned frames x the hop)."""
        return [self.generated_frames(c) * HOP_LENGTH for c in self.chunks]


@dataclass(frozen=True)
class _Voice:
    """A reference ready for planning: prepared clip, transcript as the model reads it, its warnings."""

    voice_id: str | None
    reference: ReferenceConditioning
    budget_text: str
    reference_text: str
    warnings: tuple[str, ...]


@dataclass
class _Draft:
    """A text plan being built, segment after segment."""

    chunks: list[ChunkPlan] = field(default_factory=list)
    segments: list[SegmentPlan] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    used: list[str] = field(default_factory=list)

    def add_segment(
        self,
        gen: NormalizedText,
        voice: _Voice,
        speed: float,
        where: str,
        source: SpeechSegment | None = None,
        pieces: tuple[SourcePiece, ...] = (),
        hits: tuple[LexiconHit, ...] = (),
    ) -> None:
        """Chunk ``gen`` with ``voice``'s budget and give each chunk upstream's duration for it."""
        reference = voice.reference
        max_chars = max_chars_for_reference(voice.budget_text, reference.num_samples, SAMPLE_RATE, speed)
        texts = chunk_text(gen.text, max_chars)
        if not texts:
            raise InvalidTextError(where + "nothing to say after normalisation")
        number = len(self.segments)
        self.segments.append(
            SegmentPlan(
                voice_id=voice.voice_id,
                reference=reference,
                reference_text=voice.reference_text,
                normalized_text=gen.text,
                max_chunk_bytes=max_chars,
                first_chunk=len(self.chunks),
                chunk_count=len(texts),
                speed=speed,
                pause_before_seconds=(source.pause_before_ms / 1000) if source else 0.0,
                pieces=pieces,
                lexicon_hits=hits,
                written=source.pieces if source else pieces,
            )
        )
        self.used.append(gen.normalizer_used)
        self._add_chunks(texts, voice, speed, number)

    def _add_chunks(self, texts: list[str], voice: _Voice, speed: float, number: int) -> None:
        reference = voice.reference
        for text in texts:
            index = len(self.chunks)
            frames = estimate_duration_frames(voice.reference_text, reference.audio_frames, text, speed)
            if frames > MAX_FRAMES_PER_CHUNK:
                self.warnings.append(
                    f"chunk {index + 1} is long ({frames} frames); it was capped at {MAX_FRAMES_PER_CHUNK}"
                )
                frames = MAX_FRAMES_PER_CHUNK
            self.chunks.append(ChunkPlan(index=index, text=text, duration_frames=frames, segment=number))

    def split_only_chunk(self, voice: _Voice, speed: float) -> None:
        """Make a one-chunk plan two chunks, the first about a third of the text, cut at the best
        boundary (sentence, clause, word) :func:`chunk_text` finds; nothing if it cannot be cut."""
        (only,) = self.chunks
        pieces = chunk_text(only.text, max(FIRST_PART_MIN_BYTES, len(only.text.encode("utf-8")) // 3))
        if len(pieces) < 2:
            return
        self.chunks = []
        self.segments[0] = dataclasses.replace(self.segments[0], chunk_count=2)
        self._add_chunks([pieces[0], " ".join(pieces[1:])], voice, speed, 0)


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

    def plan(
        self,
        request: SynthesisRequest,
        on_valid: Callable[[], None] | None = None,
        *,
        short_first: bool = False,
    ) -> TextPlan:
        """Validate ``request``, then per voice segment: normalise, prepare the reference, chunk, size.

        Each segment is chunked with its own voice's budget and its chunks sized with its own
        reference; chunks are numbered across segments in text order, the order they are joined in.
        ``on_valid`` runs once the request passed validation, before the (slower) normalisation: a
        synthesis reports its first progress there, so a refused request reports nothing.

        ``short_first`` (streams): a text that fits one chunk is cut in two, the first part about a
        third of it, so its audio can leave before the rest is synthesised (upstream's advice for
        low latency); a longer text already streams chunk by chunk and is planned as usual.
        """
        validate_request(request, self.settings.max_text_chars)
        if on_valid is not None:
            on_valid()
        normalizer: NormalizerName = self.settings.normalizer if request.normalize_text else "none"
        script = parse_script(request.text, request.text_type)
        segments = script.segments
        for tag in dict.fromkeys(s.voice for s in segments):
            self._check_reference(request, tag)
        # Every part and every voice's transcript through ONE normaliser run (one vinorm process).
        tags = list(dict.fromkeys(s.voice for s in segments))
        transcripts = [request.reference_for(tag).transcript or "" for tag in tags]  # type: ignore[union-attr]
        respelled = [self._respell(request, segment) for segment in segments]  # lexicons first
        try:
            normalized = normalize_texts(
                [join_pieces(pieces) for pieces, _ in respelled] + transcripts,
                normalizer=normalizer,
                vocab=self.vocab,
                vinorm=self.vinorm,
            )
        except TextNotSayableError as exc:
            if exc.index >= len(segments):
                tag = tags[exc.index - len(segments)]
                raise InvalidTextError(f"reference transcript of {_whose(tag)}: {exc.message}") from exc
            if len(segments) == 1:
                raise InvalidTextError(exc.message) from exc
            segment = segments[exc.index]
            raise InvalidTextError(
                f"segment {exc.index + 1} ({_whose(segment.voice)}): {exc.message}"
            ) from exc
        voices = {
            tag: self._voice(request, tag, ref_norm)
            for tag, ref_norm in zip(tags, normalized[len(segments) :], strict=True)
        }
        draft = _Draft()
        parts = zip(segments, normalized, respelled, strict=False)  # the transcripts come after
        for number, (segment, gen, (pieces, hits)) in enumerate(parts):
            where = f"segment {number + 1} ({_whose(segment.voice)}): " if len(segments) > 1 else ""
            draft.warnings.extend(gen.warnings)
            draft.warnings.extend(voices[segment.voice].warnings)
            low, high = SPEED_RANGE
            speed = min(max(request.speed * segment.rate, low), high)
            draft.add_segment(gen, voices[segment.voice], speed, where, segment, tuple(pieces), tuple(hits))
        if short_first and len(draft.chunks) == 1:
            draft.split_only_chunk(voices[segments[0].voice], draft.segments[0].speed)
        first = draft.segments[0]
        return TextPlan(
            normalized_text=" ".join(s.normalized_text for s in draft.segments),
            # a segment that fell back to another normaliser is what the client must hear about
            normalizer_used=next((u for u in draft.used if u != normalizer), draft.used[0]),
            reference_text=first.reference_text,
            reference=first.reference,
            max_chunk_bytes=first.max_chunk_bytes,
            chunks=tuple(draft.chunks),
            warnings=tuple(dict.fromkeys(draft.warnings)),
            segments=tuple(draft.segments),
            trailing_pause_seconds=script.trailing_pause_ms / 1000,
            ssml=script.ssml,
        )

    @staticmethod
    def _respell(
        request: SynthesisRequest, segment: SpeechSegment
    ) -> tuple[list[SourcePiece], list[LexiconHit]]:
        """Apply the lexicons, highest precedence first: request, the segment's voice, server.

        A word one level respelled is no longer the user's own (a non-verbatim piece), so a lower
        level cannot respell it again: the higher level wins.
        """
        ref = request.reference_for(segment.voice)
        voice_lexicon = ref.lexicon if ref is not None else None
        pieces = list(segment.pieces)
        hits: list[LexiconHit] = []
        for lexicon in (request.lexicon, voice_lexicon, request.server_lexicon):
            if lexicon:
                pieces, found = lexicon.apply(pieces)
                hits.extend(found)
        return pieces, sorted(hits, key=lambda h: h.char_start)

    @staticmethod
    def _check_reference(request: SynthesisRequest, tag: str | None) -> None:
        """Every voice the text uses has a reference with a transcript (before any normalising)."""
        ref = request.reference_for(tag)
        assert ref is not None, "validate_request (run first by plan) refuses a tag without a reference"
        if ref.transcript is None:
            raise InvalidReferenceError(
                f"{_whose(tag)} has no transcript; transcribe it first (the voice library does this)"
            )

    def _voice(self, request: SynthesisRequest, tag: str | None, ref_norm: NormalizedText) -> _Voice:
        """Prepare the reference that says the segments tagged ``tag`` (None: the request's own),
        with its transcript as normalised (``ref_norm``)."""
        ref = request.reference_for(tag)
        assert ref is not None and ref.transcript is not None, "checked by _check_reference"
        label = "reference transcript" if tag is None else f"reference transcript of voice {tag}"
        reference = self.references.get(ref.audio_path)
        # Upstream sizes chunks from the transcript before its final extra space, and puts the
        # spaced form in front of every chunk; keep both for byte-exact budgets and durations.
        budget_text = prepare_ref_text(ref_norm.text)
        return _Voice(
            voice_id=ref.voice_id or tag,
            reference=reference,
            budget_text=budget_text,
            reference_text=ref_text_for_model(budget_text),
            warnings=tuple(f"{label}: {w}" for w in ref_norm.warnings),
        )


def _whose(tag: str | None) -> str:
    return "the reference voice" if tag is None else f"voice {tag!r}"
