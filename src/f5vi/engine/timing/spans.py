"""Where each chunk lies in the joined audio: exact, from the chunk lengths and the cross-fades.

:func:`~f5vi.engine.audio.cross_fade_concat` lays chunk ``i`` from ``sum(len[:i]) - sum(overlap[:i])``
for ``len[i]`` samples; consecutive chunks share their cross-fade. For word times the audio is cut
into a partition: the boundary between two chunks is the middle of their cross-fade.
"""

from __future__ import annotations

import itertools

from f5vi.engine.audio import cross_fade_overlaps


def chunk_spans(
    lengths: list[int], sample_rate: int, fade_seconds: float, pauses: list[int] | None = None
) -> list[tuple[int, int]]:
    """``(start, end)`` sample of each chunk in the joined audio (an empty chunk is an empty span).

    ``pauses[i]``: samples of silence before chunk ``i`` (an SSML ``<break>``); as
    :func:`~f5vi.engine.audio.join_with_pauses` lays them, chunks on either side of a pause are not
    cross-faded into each other.
    """
    spans: list[tuple[int, int]] = []
    position = 0
    group: list[int] = []

    def lay(group: list[int]) -> None:
        nonlocal position
        nonempty = [n for n in group if n > 0]
        overlaps = iter(cross_fade_overlaps(nonempty, sample_rate, fade_seconds))
        seen = False
        for n in group:
            if n > 0 and seen:
                position -= next(overlaps)
            spans.append((position, position + n))
            if n > 0:
                position += n
                seen = True

    for n, pause in zip(lengths, pauses or [0] * len(lengths), strict=True):
        if pause > 0:
            lay(group)
            group = []
            position += pause
        group.append(n)
    lay(group)
    return spans


def partition(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Non-overlapping parts of the audio, one per chunk: boundaries in the middle of each cross-fade;
    a silence between two chunks (a pause) belongs to neither."""
    cuts = [spans[0][0]] if spans else []
    for (_, prev_end), (start, _) in itertools.pairwise(spans):
        cuts.append(max(cuts[-1], (start + prev_end) // 2 if start < prev_end else start))
    ends = cuts[1:] + ([spans[-1][1]] if spans else [])
    return [(cut, min(end, span_end)) for cut, end, (_, span_end) in zip(cuts, ends, spans, strict=True)]
