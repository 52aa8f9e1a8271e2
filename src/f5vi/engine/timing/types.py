"""What timestamps look like: plain frozen dataclasses and their JSON form (numpy and torch free).

Times are seconds of the final audio; ``*_sample`` fields are the same instants in samples, where a
time is exact (chunk spans). ``char_start``/``char_end`` index the text the client submitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

WordMethod = Literal["estimated", "aligned"]


def seconds(sample: int, sample_rate: int) -> float:
    """Seconds with enough digits that ``round(s * sample_rate)`` gives the sample back."""
    return round(sample / sample_rate, 6)


@dataclass(frozen=True)
class TimedChunk:
    """A chunk's span in the joined audio: it starts where the cross-fade into it starts."""

    index: int
    start_sample: int
    end_sample: int
    voice_id: str | None
    text: str
    """The normalised text the model read."""


@dataclass(frozen=True)
class TimedWord:
    text: str
    """The spoken (normalised) word."""
    start: float
    end: float
    char_start: int
    char_end: int
    """The original token it belongs to, in the submitted text (several words may share one)."""
    chunk: int


@dataclass(frozen=True)
class TimedSentence:
    text: str
    """The submitted text of the sentence, as written."""
    start: float
    end: float
    char_start: int
    char_end: int
    exact: bool
    """Both ends fall on chunk boundaries, so both are planned spans (exact to the sample)."""


@dataclass(frozen=True)
class Timestamps:
    method: WordMethod
    sample_rate: int
    chunks: tuple[TimedChunk, ...]
    sentences: tuple[TimedSentence, ...]
    words: tuple[TimedWord, ...]
    notes: tuple[str, ...] = field(default=())
    """How the times were obtained, and why not ``aligned`` when the aligner was wanted but failed."""

    def to_dict(self) -> dict[str, Any]:
        sr = self.sample_rate
        return {
            "method": self.method,
            "chunks_method": "exact",
            "notes": list(self.notes),
            "chunks": [
                {
                    "index": c.index,
                    "start": seconds(c.start_sample, sr),
                    "end": seconds(c.end_sample, sr),
                    "start_sample": c.start_sample,
                    "end_sample": c.end_sample,
                    "voice_id": c.voice_id,
                    "text": c.text,
                }
                for c in self.chunks
            ],
            "sentences": [
                {
                    "text": s.text,
                    "start": s.start,
                    "end": s.end,
                    "char_start": s.char_start,
                    "char_end": s.char_end,
                    "exact": s.exact,
                }
                for s in self.sentences
            ],
            "words": [
                {
                    "text": w.text,
                    "start": w.start,
                    "end": w.end,
                    "char_start": w.char_start,
                    "char_end": w.char_end,
                    "chunk": w.chunk,
                }
                for w in self.words
            ],
        }
