"""Where each chunk lies in the joined audio: exact, from the chunk lengths and the cross-fades.

:func:`~f5vi.engine.audio.cross_fade_concat` lays chunk ``i`` from ``sum(len[:i]) - sum(overlap[:i])``
for ``len[i]`` samples; consecutive chunks share their cross-fade. For word times the audio is cut
into a partition: the boundary between two chunks is the middle of their cross-fade.
"""

from __future__ import annotations

import itertools

from f5vi.engine.audio import cross_fade_overlaps


def chunk_spans(lengths: list[int], sample_rate: int, fade_seconds: float) -> list[tuple[int, int]]:
    """``(start, end)`` sample of each chunk in the joined audio (an empty chunk is an empty span)."""
    nonempty = [n for n in lengths if n > 0]
    overlaps = iter(cross_fade_overlaps(nonempty, sample_rate, fade_seconds))
    spans: list[tuple[int, int]] = []
    position = 0
    seen = False
    for n in lengths:
        if n > 0 and seen:
            position -= next(overlaps)
        spans.append((position, position + n))
        if n > 0:
            position += n
            seen = True
    return spans


def partition(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Non-overlapping spans that tile the audio: chunk boundaries in the middle of each cross-fade."""
    cuts = [spans[0][0]] if spans else []
    for (_, prev_end), (start, _) in itertools.pairwise(spans):
        cuts.append(max(cuts[-1], (start + prev_end) // 2 if start < prev_end else start))
    ends = cuts[1:] + ([spans[-1][1]] if spans else [])
    return list(zip(cuts, ends, strict=True))
