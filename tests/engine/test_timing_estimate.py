"""Estimated word times: byte shares with pauses at punctuation, snapped to silences in the audio."""

from __future__ import annotations

import itertools

import numpy as np

from f5vi.engine.timing.estimate import estimate_words, find_silences, share_span, snap_to_silences
from f5vi.engine.timing.spans import chunk_spans, partition

SR = 24_000


def _bursts(layout: list[tuple[float, bool]]) -> np.ndarray:
    """Audio of tone bursts (True) and silences (False) of the given seconds."""
    parts = []
    for seconds, loud in layout:
        t = np.arange(int(seconds * SR)) / SR
        parts.append(0.5 * np.sin(2 * np.pi * 220 * t) if loud else np.zeros_like(t))
    return np.concatenate(parts).astype(np.float32)


def test_words_share_the_span_by_utf8_bytes_with_pauses_after_punctuation() -> None:
    spans = share_span(["ab", "cd,", "đêm"], 0, 1500)  # bytes 2 (+1 space), 3 (+1 +3 comma), 5
    lengths = [b - a for a, b in spans]
    assert spans[0][0] == 0 and spans[-1][1] == 1500
    assert lengths == [200, 300, 500]
    assert spans[2][0] - spans[1][1] == 400  # the comma's pause: the space + 3 bytes


def test_silences_are_found_and_boundaries_move_onto_them() -> None:
    # "một," (6 bytes + its pause) then "hai" (3 bytes): the estimate puts the gap near 1.35 s
    audio = _bursts([(0.2, False), (0.9, True), (0.3, False), (0.6, True), (0.2, False)])
    silences = find_silences(audio, SR, 0, len(audio))
    assert [(round(a / SR, 2), round(b / SR, 2)) for a, b in silences] == [(0.0, 0.2), (1.1, 1.4), (2.0, 2.2)]
    words = ["một,", "hai"]
    spans = share_span(words, 0, len(audio))
    snapped = snap_to_silences(words, spans, silences, SR)
    assert snapped == estimate_words(words, audio, SR, 0, len(audio))
    assert [(round(a / SR, 2), round(b / SR, 2)) for a, b in snapped] == [(0.2, 1.1), (1.4, 2.0)]


def test_without_silences_the_shares_stay() -> None:
    audio = _bursts([(1.5, True)])
    words = ["xin", "chào", "bạn"]
    assert estimate_words(words, audio, SR, 0, len(audio)) == share_span(words, 0, len(audio))


def test_chunk_spans_follow_the_cross_fades_and_partition_tiles_the_audio() -> None:
    fade = int(0.15 * SR)
    spans = chunk_spans([SR, 0, 2 * SR, 1000], SR, 0.15)
    assert spans == [
        (0, SR),
        (SR, SR),
        (SR - fade, 3 * SR - fade),
        (3 * SR - fade - 1000, 3 * SR - fade),  # a short chunk fades in whole
    ]
    cuts = partition(spans)
    assert cuts[0][0] == 0 and cuts[-1][1] == spans[-1][1]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cuts))
