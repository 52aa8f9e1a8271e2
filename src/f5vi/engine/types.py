"""Plain data passed into and out of the engine (no torch types at this boundary)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from f5vi.engine.errors import SynthesisCancelled
from f5vi.engine.text.lexicon import Lexicon
from f5vi.engine.text.script import TextType
from f5vi.engine.timing.types import Timestamps

SAMPLE_RATE = 24_000
HOP_LENGTH = 256
N_MELS = 100

ProgressCallback = Callable[[float, str, int, int], None]
"""``on_progress(fraction, stage, chunk_index, chunk_count)``; fraction in [0, 1], never decreasing."""


class CancelToken:
    """Thread-safe cancellation flag checked by the engine between ODE steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise SynthesisCancelled("synthesis was cancelled")


class LinkedCancelToken(CancelToken):
    """Cancelled when it is itself, or when any of ``parents`` is (a call made for a job or stream)."""

    def __init__(self, *parents: CancelToken | None) -> None:
        super().__init__()
        self._parents = tuple(p for p in parents if p is not None)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or any(p.cancelled for p in self._parents)


@dataclass(frozen=True)
class ReferenceVoice:
    """A reference clip and the exact transcript of what is said in it (``None``: transcribe it)."""

    audio_path: Path
    transcript: str | None
    voice_id: str | None = None
    lexicon: Lexicon = field(default_factory=Lexicon)
    """The voice's own respellings (``<voice id>.lexicon``), between the request's and the server's."""


@dataclass(frozen=True)
class VerifyOptions:
    """Verification of one request (:mod:`f5vi.engine.verify`): the CER a chunk may have after
    canonicalisation, and how many samplings (the first included) it may take."""

    max_cer: float = 0.2
    max_attempts: int = 3


@dataclass(frozen=True)
class ChunkVerification:
    """How the kept attempt of one chunk did (one entry of a result's ``verification`` list)."""

    chunk: int
    cer: float
    attempts: int
    """Samplings the chunk took (1: it passed at once, or the limit is 1)."""
    seed: int
    """The seed of the kept attempt (the request's seed unless a later attempt was better)."""
    transcript: str
    passed: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "chunk": self.chunk,
            "cer": round(self.cer, 4),
            "attempts": self.attempts,
            "seed": self.seed,
            "transcript": self.transcript,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class SynthesisRequest:
    text: str
    """May switch voices with ``[voice_id]`` tags (:mod:`f5vi.engine.text.voice_tags`)."""
    reference: ReferenceVoice
    """The request's own voice: it says the text before the first tag."""
    speed: float = 0.9
    nfe_step: int = 32
    cfg_strength: float = 2.0
    sway_sampling_coef: float = -1.0
    ode_method: str = "euler"
    use_epss: bool = True
    seed: int | None = None
    cross_fade_seconds: float = 0.15
    normalize_text: bool = True
    voices: tuple[tuple[str, ReferenceVoice], ...] = ()
    """The reference of every voice the text's tags name, as ``(tag, reference)`` pairs."""
    text_type: TextType = "auto"
    """``text``, ``ssml`` or ``auto`` (SSML when the text starts with ``<speak>``)."""
    lexicon: Lexicon = field(default_factory=Lexicon)
    """The request's own respellings (highest precedence)."""
    server_lexicon: Lexicon = field(default_factory=Lexicon)
    """The server's respellings (``F5VI_LEXICON_PATHS``; lowest precedence)."""
    verify: VerifyOptions | None = None
    """Transcribe every chunk and sample it again while it says something else (None: off)."""

    def reference_for(self, tag: str | None) -> ReferenceVoice | None:
        """The reference that says a segment tagged ``tag`` (None: the request's own voice).

        A tag naming the request's own voice needs no entry in :attr:`voices`.
        """
        voices = dict(self.voices)
        if tag is None or (tag not in voices and tag == self.reference.voice_id):
            return self.reference
        return voices.get(tag)


@dataclass(frozen=True)
class SegmentSummary:
    """One voice's stretch of a result: who spoke it and how many chunks it took, in text order."""

    voice_id: str | None
    chunk_count: int


@dataclass
class SynthesisResult:
    audio: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    seed: int
    chunks: list[str]
    normalized_text: str
    reference_text: str
    reference_seconds: float = 0.0  # of the reference audio actually used (after clipping/trimming)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    segments: list[SegmentSummary] = field(default_factory=list)
    """The voice segments in text order; their chunk counts add up to ``len(chunks)``."""
    timestamps: Timestamps | None = None
    """Chunk, sentence and word times in the audio (:mod:`f5vi.engine.timing`)."""
    verification: list[ChunkVerification] | None = None
    """Per chunk, with verification on (None: it was off)."""

    @property
    def chunk_voices(self) -> list[str | None]:
        """The voice of each chunk, in chunk order."""
        return [s.voice_id for s in self.segments for _ in range(s.chunk_count)]

    @property
    def duration_seconds(self) -> float:
        return float(len(self.audio)) / float(self.sample_rate)
