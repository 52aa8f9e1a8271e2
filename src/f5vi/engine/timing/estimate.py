"""Word times without an aligner: share a chunk's span as F5-TTS shares duration, then snap to silences.

F5-TTS gives a chunk ``ref_frames / ref_bytes * chunk_bytes / speed`` frames: its duration is linear
in the chunk's UTF-8 bytes, and the model spreads the text over it. So a word's share of its chunk's
span is its share of the chunk's bytes (the word, its punctuation, the space after it). Punctuation
gets a few bytes more, as speakers pause there (:data:`PAUSE_BYTES`). The shared-out boundaries are
then moved onto silences found in the generated audio nearby (:func:`find_silences`), where the
speech really paused. Cost: one RMS pass over the audio (numpy), no model.
"""

from __future__ import annotations

import re

import numpy as np

PAUSE_BYTES = {",": 3, ";": 4, ":": 4, "…": 5, ".": 6, "!": 6, "?": 6}
"""Extra bytes of duration after a word that ends with the mark (a pause the byte count under-rates)."""
FRAME_SECONDS = 0.01
MIN_SILENCE_SECONDS = 0.08
SILENCE_DB = -30.0
"""A frame is silent when its RMS is this far below the loudest frame of the chunk."""
SNAP_WINDOW_SECONDS = (0.12, 0.35)
"""How far a boundary may move onto a silence: after a plain word, after punctuation."""
MIN_WORD_SECONDS = 0.03

_TRAILING = re.compile(r"[^\w]+$")


def _pause(word: str) -> int:
    trail = _TRAILING.search(word)
    return max((PAUSE_BYTES.get(c, 0) for c in trail.group()), default=0) if trail else 0


def share_span(words: list[str], start: int, end: int) -> list[tuple[int, int]]:
    """Sample spans of ``words`` inside ``[start, end)``: each its share of the chunk's bytes."""
    if not words:
        return []
    speech = [len(w.encode("utf-8")) for w in words]
    gaps = [1 + _pause(w) for w in words[:-1]] + [_pause(words[-1])]
    total = float(sum(speech) + sum(gaps))
    scale = (end - start) / total
    spans: list[tuple[int, int]] = []
    position = 0.0
    for size, gap in zip(speech, gaps, strict=True):
        word_start = start + round(position * scale)
        position += size
        spans.append((word_start, start + round(position * scale)))
        position += gap
    return spans


def find_silences(audio: np.ndarray, sample_rate: int, start: int, end: int) -> list[tuple[int, int]]:
    """Silent runs (sample spans) of at least :data:`MIN_SILENCE_SECONDS` in ``audio[start:end]``."""
    hop = max(1, int(FRAME_SECONDS * sample_rate))
    part = np.asarray(audio[start:end], dtype=np.float64)
    frames = len(part) // hop
    if frames == 0:
        return []
    rms = np.sqrt(np.mean(part[: frames * hop].reshape(frames, hop) ** 2, axis=1) + 1e-12)
    quiet = rms < max(rms.max() * 10 ** (SILENCE_DB / 20), 1e-5)
    runs: list[tuple[int, int]] = []
    run_start: int | None = None
    min_frames = int(MIN_SILENCE_SECONDS / FRAME_SECONDS)
    for i, q in enumerate([*quiet.tolist(), False]):
        if q and run_start is None:
            run_start = i
        elif not q and run_start is not None:
            if i - run_start >= min_frames:
                runs.append((start + run_start * hop, start + min(i * hop, len(part))))
            run_start = None
    return runs


def snap_to_silences(
    words: list[str], spans: list[tuple[int, int]], silences: list[tuple[int, int]], sample_rate: int
) -> list[tuple[int, int]]:
    """Move word boundaries onto nearby silences: a word ends where a silence starts, the next begins
    where it ends. Leading and trailing silence of the span is taken off the first and last word."""
    if not spans:
        return []
    out = [list(s) for s in spans]
    min_len = int(MIN_WORD_SECONDS * sample_rate)
    for s0, s1 in silences:
        if s0 <= out[0][0] < s1 and s1 < out[0][1] - min_len:
            out[0][0] = s1
        if s0 < out[-1][1] <= s1 and s0 > out[-1][0] + min_len:
            out[-1][1] = s0
    used: set[int] = set()
    for i in range(len(out) - 1):
        gap_mid = (out[i][1] + out[i + 1][0]) / 2
        window = SNAP_WINDOW_SECONDS[1 if _pause(words[i]) else 0] * sample_rate
        best: tuple[float, int] | None = None
        for k, (s0, s1) in enumerate(silences):
            distance = abs((s0 + s1) / 2 - gap_mid)
            if k in used or distance > window:
                continue
            if s0 <= out[i][0] + min_len or s1 >= out[i + 1][1] - min_len:
                continue  # the silence would swallow a word
            if best is None or distance < best[0]:
                best = (distance, k)
        if best is not None:
            used.add(best[1])
            out[i][1], out[i + 1][0] = silences[best[1]]
    return [(a, b) for a, b in out]


def estimate_words(
    words: list[str], audio: np.ndarray, sample_rate: int, start: int, end: int
) -> list[tuple[int, int]]:
    """Sample spans of a chunk's ``words`` in ``audio[start:end]`` (see the module docstring)."""
    spans = share_span(words, start, end)
    return snap_to_silences(words, spans, find_silences(audio, sample_rate, start, end), sample_rate)
