"""The normalisation report: a text as the model will read it, split as synthesis will split it.

One model for ``POST /normalize`` (its response schema) and ``f5vi normalize`` (its ``--json`` and
readable output), built from the engine's :class:`~f5vi.engine.planning.TextPlan`; it lives below
the API so the CLI imports no HTTP schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from pydantic import BaseModel, Field

from f5vi.engine.text.lexicon import LexiconEntry, LexiconHit

if TYPE_CHECKING:
    from f5vi.engine.planning import TextPlan


class LexiconEntryInfo(BaseModel):
    term: str
    say: str = Field(description="What is said instead (before normalisation).")
    case_sensitive: bool
    level: str = Field(description="`request`, `voice` or `server` (highest precedence first).")
    origin: str = Field(description="`file:line` of a file entry, `request[i]` of a request's.")

    @classmethod
    def of(cls, entry: LexiconEntry) -> LexiconEntryInfo:
        return cls(
            term=entry.term,
            say=entry.say,
            case_sensitive=entry.case_sensitive,
            level=entry.level,
            origin=entry.origin,
        )


class LexiconHitInfo(BaseModel):
    """One respelling that fired: the span of the submitted text it replaced and the entry."""

    char_start: int = Field(description="Start of the replaced word in the submitted text (code points).")
    char_end: int = Field(description="End (exclusive) of the replaced word in the submitted text.")
    matched: str = Field(description="The word as written.")
    entry: LexiconEntryInfo

    @classmethod
    def of(cls, hit: LexiconHit) -> LexiconHitInfo:
        return cls(
            char_start=hit.char_start,
            char_end=hit.char_end,
            matched=hit.matched,
            entry=LexiconEntryInfo.of(hit.entry),
        )


class SegmentInfo(BaseModel):
    """One voice's stretch of the text, in text order (`[voice_id]` tags start a new one)."""

    voice_id: str = Field(description="The voice that said this part.")
    chunk_count: int = Field(description="Chunks of this part; they follow the previous parts' chunks.")


class NormalizedChunk(BaseModel):
    index: int = Field(description="Position of the chunk, from 0; synthesised and joined in this order.")
    voice_id: str = Field(description="The voice that says this chunk (`[voice_id]` tags switch it).")
    text: str = Field(description="Exactly what the model reads for this chunk (after the reference text).")
    bytes: int = Field(description="UTF-8 length, the unit of the chunk budget.")
    duration_frames: int = Field(description="Reference + generated mel frames (upstream's formula).")
    estimated_seconds: float = Field(description="Audio this chunk will produce, before cross-fading.")


class NormalizedSegment(SegmentInfo):
    """One voice's part of the text as the model will read it, with that voice's reference and budget."""

    normalized_text: str
    reference_text: str = Field(description="This voice's normalised transcript, read before its chunks.")
    max_chunk_bytes: int = Field(description="Chunk budget of this voice at this speed (UTF-8 bytes).")
    speed: float = Field(1.0, description="This part's speed: the request's times its `<prosody rate>`.")
    pause_before_seconds: float = Field(0.0, description="Silence before this part (`<break>`).")
    char_start: int = Field(0, description="Where this part starts in the submitted text (code points).")
    char_end: int = Field(0, description="Where it ends (exclusive) in the submitted text.")
    text_given: str = Field("", description="What the normaliser was given (after SSML and the lexicons).")


class NormalizeResponse(BaseModel):
    """The text as the model will read it, split as synthesis will split it, and how long it will last."""

    voice_id: str = Field(description="The request's own voice (`ref_name`).")
    speed: float
    normalizer: str = Field(
        description="Normaliser that produced the text: `vinorm`, `hamster` (chosen, or the fallback "
        "when vinorm failed: see `warnings`) or `none`."
    )
    normalized_text: str = Field(description="Equal to `result.normalized_text` of a job with this text.")
    reference_text: str = Field(
        description="The voice's normalised transcript, read before every chunk (of the first part: "
        "see `segments` for each voice's)."
    )
    max_chunk_bytes: int = Field(
        description="Chunk budget for this voice and speed (UTF-8 bytes; of the first part)."
    )
    chunk_count: int
    chunks: list[NormalizedChunk]
    segments: list[NormalizedSegment] = Field(
        description="The text's voice parts in order (one without `[voice_id]` tags)."
    )
    estimated_duration_seconds: float = Field(
        description="Length of the result: the chunks' audio less the cross-fades between them."
    )
    warnings: list[str] = Field(
        description="Characters the vocabulary lacks, symbols that cannot be read, a fallback "
        "normaliser, digits left unread, overlong chunks."
    )
    ssml: bool = Field(False, description="The text was read as SSML.")
    trailing_pause_seconds: float = Field(0.0, description="Silence after the last chunk (`<break>`).")
    lexicon_hits: list[LexiconHitInfo] = Field(
        default_factory=list,
        description="Every respelling that fired, with the span of the submitted text it replaced.",
    )

    @classmethod
    def from_plan(cls, plan: TextPlan, *, voice_id: str, speed: float, cross_fade_seconds: float) -> Self:
        def voice_of(segment_voice: str | None) -> str:
            return segment_voice or voice_id  # None: a bare reference, the request's own voice

        chunks = [
            NormalizedChunk(
                index=c.index,
                voice_id=voice_of(plan.segment_of(c).voice_id),
                text=c.text,
                bytes=len(c.text.encode("utf-8")),
                duration_frames=c.duration_frames,
                estimated_seconds=round(plan.chunk_seconds(c), 3),
            )
            for c in plan.chunks
        ]
        return cls(
            voice_id=voice_id,
            speed=speed,
            normalizer=plan.normalizer_used,
            normalized_text=plan.normalized_text,
            reference_text=plan.reference_text,
            max_chunk_bytes=plan.max_chunk_bytes,
            chunk_count=len(chunks),
            chunks=chunks,
            segments=[
                NormalizedSegment(
                    voice_id=voice_of(s.voice_id),
                    chunk_count=s.chunk_count,
                    normalized_text=s.normalized_text,
                    reference_text=s.reference_text,
                    max_chunk_bytes=s.max_chunk_bytes,
                    speed=round(s.speed, 4),
                    pause_before_seconds=s.pause_before_seconds,
                    char_start=s.char_start,
                    char_end=s.char_end,
                    text_given="".join(p.text for p in s.pieces),
                )
                for s in plan.segments
            ],
            ssml=plan.ssml,
            trailing_pause_seconds=plan.trailing_pause_seconds,
            lexicon_hits=[LexiconHitInfo.of(h) for h in plan.lexicon_hits],
            estimated_duration_seconds=round(plan.estimated_seconds(cross_fade_seconds), 3),
            warnings=list(plan.warnings),
        )
