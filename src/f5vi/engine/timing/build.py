"""Assemble a result's timestamps from its plan and its audio (see :mod:`f5vi.engine.timing`).

Chunks: exact spans from the generated lengths and the cross-fades (:mod:`.spans`), which equal the
planned spans (``TextPlan.planned_samples``) to the sample. Words: per chunk, inside the chunk's part
of the audio, by the aligner when one is configured and works, estimated otherwise (:mod:`.estimate`);
each word points at the submitted text's token it was read from (:mod:`f5vi.engine.text.offsets`).
Sentences: the submitted text cut as the chunker cuts sentences; an end that falls on a chunk
boundary is that boundary (exact), any other is its word's time.
"""

from __future__ import annotations

import bisect
import logging
import threading
from dataclasses import dataclass, field

import numpy as np

from f5vi.engine.planning import SegmentPlan, TextPlan
from f5vi.engine.text.chunking import boundary_levels
from f5vi.engine.text.offsets import SourceToken, map_words, source_tokens
from f5vi.engine.text.spans import join_pieces
from f5vi.engine.timing.aligner import CtcAligner
from f5vi.engine.timing.estimate import estimate_words
from f5vi.engine.timing.spans import chunk_spans, partition
from f5vi.engine.timing.types import (
    TimedChunk,
    TimedSentence,
    TimedWord,
    Timestamps,
    WordMethod,
    seconds,
)

logger = logging.getLogger(__name__)

NO_ALIGNER_NOTE = (
    "words estimated: the chunk spans shared out by UTF-8 bytes with pauses at punctuation, snapped "
    "to silences; set F5VI_ALIGNER_MODEL to a Vietnamese wav2vec2 CTC model for aligned word times"
)


@dataclass
class Timekeeper:
    """Makes timestamps; loads the aligner (``F5VI_ALIGNER_MODEL``) on first use, once."""

    aligner_model: str | None = None
    _aligner: CtcAligner | None = field(default=None, init=False)
    _failure: str | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def aligner(self) -> tuple[CtcAligner | None, str | None]:
        """The loaded aligner, or None and why not."""
        if not self.aligner_model:
            return None, NO_ALIGNER_NOTE
        with self._lock:
            if self._aligner is None and self._failure is None:
                try:
                    self._aligner = CtcAligner.load(self.aligner_model)
                except Exception as exc:  # a missing model must not fail the synthesis
                    logger.error("aligner %s failed to load: %s", self.aligner_model, exc)
                    self._failure = (
                        f"words estimated: the aligner F5VI_ALIGNER_MODEL={self.aligner_model} "
                        f"could not be loaded ({exc})"
                    )
            return self._aligner, self._failure

    def timestamps(
        self,
        plan: TextPlan,
        waves: list[np.ndarray],
        sample_rate: int,
        fade_seconds: float,
    ) -> Timestamps:
        """Timestamps of a result: ``waves`` are its chunks before they were joined (the plan's spans
        map every word back to the submitted text)."""
        spans = chunk_spans(
            [len(w) for w in waves], sample_rate, fade_seconds, pause_samples(plan, sample_rate)
        )
        parts = partition(spans)
        aligner, note = self.aligner()
        owners = word_owners(plan)
        words: list[TimedWord] = []
        failed: list[int] = []
        for index, wave in enumerate(waves):
            timed, ok = self.chunk_words(plan, owners, index, wave, spans, parts, sample_rate, aligner)
            words.extend(timed)
            if not ok:
                failed.append(index)
        sentences: list[TimedSentence] = []
        for segment in plan.segments:
            mine = [
                w for w in words if segment.first_chunk <= w.chunk < segment.first_chunk + segment.chunk_count
            ]
            sentences.extend(_sentences(segment, mine, parts, sample_rate))
        notes = [note] if note else []
        if failed:
            notes.append(f"chunks {failed} estimated: their words did not fit the aligner's frames")
        method: WordMethod = "aligned" if aligner is not None and len(failed) < len(waves) else "estimated"
        voices = [s.voice_id for s in plan.segments for _ in range(s.chunk_count)]
        chunks = tuple(
            TimedChunk(i, a, b, voices[i], c.text)
            for i, ((a, b), c) in enumerate(zip(spans, plan.chunks, strict=True))
        )
        return Timestamps(method, sample_rate, chunks, tuple(sentences), tuple(words), tuple(notes))

    def chunk_words(
        self,
        plan: TextPlan,
        owners: list[SourceToken],
        index: int,
        wave: np.ndarray,
        spans: list[tuple[int, int]],
        parts: list[tuple[int, int]],
        sample_rate: int,
        aligner: CtcAligner | None,
    ) -> tuple[list[TimedWord], bool]:
        """The words of chunk ``index`` from its own wave, in seconds of the joined audio.

        Only the chunk's part of the audio (its span less half of each cross-fade) is searched, in
        the chunk's own wave, so a streamed result gets the same times as a whole one. Returns the
        words and False when the aligner was wanted but could not place them (estimated instead).
        """
        chunk_words = plan.chunks[index].text.split()
        first = sum(len(c.text.split()) for c in plan.chunks[:index])
        offset = spans[index][0]
        start, end = parts[index][0] - offset, parts[index][1] - offset
        timed: list[tuple[int, int]] | None = None
        ok = True
        if aligner is not None:
            try:
                timed = [
                    (start + a, start + b)
                    for a, b in aligner.align_words(chunk_words, wave[start:end], sample_rate)
                ]
            except ValueError:
                ok = False
        if timed is None:
            timed = estimate_words(chunk_words, wave, sample_rate, start, end)
        out = []
        for k, (word, (a, b)) in enumerate(zip(chunk_words, timed, strict=True)):
            owner = owners[first + k]
            out.append(
                TimedWord(word, seconds(offset + a, sample_rate), seconds(offset + b, sample_rate),
                          owner.char_start, owner.char_end, index)
            )  # fmt: skip
        return out, ok

    def streamed(self, plan: TextPlan, sample_rate: int, fade_seconds: float) -> StreamTimer:
        """Word times chunk by chunk while a stream runs (:class:`StreamTimer`)."""
        return StreamTimer(self, plan, sample_rate, fade_seconds)


def pause_samples(plan: TextPlan, sample_rate: int) -> list[int]:
    """Silence before each chunk in the joined audio (``<break>``), as :func:`join_with_pauses` lays it."""
    return [round(plan.pause_before(chunk) * sample_rate) for chunk in plan.chunks]


def word_owners(plan: TextPlan) -> list[SourceToken]:
    """The submitted token of every spoken word of ``plan``, in order across its segments."""
    owners: list[SourceToken] = []
    for segment in plan.segments:
        spoken = segment.normalized_text.split()
        owners.extend(map_words(join_pieces(segment.pieces), spoken, segment.pieces))
    return owners


@dataclass
class StreamTimer:
    """Times a stream's words as its chunks are vocoded, before their audio leaves.

    A chunk's part of the audio depends on its neighbours' lengths; a neighbour not vocoded yet
    counts with its planned length, which the generated one equals (``TextPlan.planned_samples``).
    """

    keeper: Timekeeper
    plan: TextPlan
    sample_rate: int
    fade_seconds: float

    def __post_init__(self) -> None:
        self.owners = word_owners(self.plan)
        self.pauses = pause_samples(self.plan, self.sample_rate)
        self.lengths = self.plan.planned_samples()
        self.aligner, _ = self.keeper.aligner()

    def chunk_ready(self, index: int, wave: np.ndarray) -> list[TimedWord]:
        self.lengths[index] = len(wave)
        spans = chunk_spans(self.lengths, self.sample_rate, self.fade_seconds, self.pauses)
        words, _ = self.keeper.chunk_words(
            self.plan, self.owners, index, wave, spans, partition(spans), self.sample_rate, self.aligner
        )
        return words


def _sentences(
    segment: SegmentPlan,
    words: list[TimedWord],
    parts: list[tuple[int, int]],
    sample_rate: int,
) -> list[TimedSentence]:
    """The segment's sentences as written, timed by their words (chunk boundaries where they fall)."""
    tokens = source_tokens(join_pieces(segment.written), segment.written)
    levels = boundary_levels([t.text for t in tokens])
    groups: list[list[SourceToken]] = [[]]
    for token, level in zip(tokens, levels, strict=True):
        groups[-1].append(token)
        if level == 1:
            groups.append([])
    starts = [g[0].char_start for g in groups if g]
    members: dict[int, list[int]] = {}
    for i, word in enumerate(words):
        members.setdefault(bisect.bisect_right(starts, word.char_start) - 1, []).append(i)
    out: list[TimedSentence] = []
    for number, group in enumerate(g for g in groups if g):
        mine = members.get(number)
        if not mine:
            continue
        lo, hi = group[0].char_start, group[-1].char_end
        first, last = words[mine[0]], words[mine[-1]]
        starts_chunk = mine[0] == 0 or words[mine[0] - 1].chunk != first.chunk
        ends_chunk = mine[-1] == len(words) - 1 or words[mine[-1] + 1].chunk != last.chunk
        start = seconds(parts[first.chunk][0], sample_rate) if starts_chunk else first.start
        end = seconds(parts[last.chunk][1], sample_rate) if ends_chunk else last.end
        written = " ".join(t.text for t in group)  # as written, "[[" read as "[" and line breaks as spaces
        out.append(TimedSentence(written, start, end, lo, hi, starts_chunk and ends_chunk))
    return out
