"""CTC forced alignment: the most likely path of a known label sequence through a CTC emission matrix.

Our own Viterbi (numpy, ~40 lines) rather than ``torchaudio.functional.forced_align``: torchaudio
2.8 announced that it is going into maintenance and marked much of its API for removal (its CUDA
kernel included), and a plain numpy path runs the same on every device and build. A test checks that
both give the same path on the same emissions. The algorithm is the standard one (Graves 2006; as
in torchaudio's and ctc-segmentation's forced aligners): the labels interleaved with blanks, 2L + 1
states; each frame stays, moves one state on, or skips a blank between two different labels.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelSpan:
    """Frames ``[start, end)`` where label number ``index`` of the target was emitted."""

    index: int
    label: int
    start: int
    end: int


def forced_align(log_probs: np.ndarray, targets: list[int], blank: int = 0) -> list[int]:
    """The best path as one state per frame (state ``2k + 1`` is target ``k``, even states blanks).

    ``log_probs`` is ``[frames, vocab]`` (log-softmax). Raises ValueError when the targets cannot fit
    (each label needs a frame, repeated labels a blank between them).
    """
    frames = log_probs.shape[0]
    states = [blank]
    for label in targets:
        states += [label, blank]
    n = len(states)
    repeats = sum(1 for a, b in itertools.pairwise(targets) if a == b)
    if len(targets) + repeats > frames:
        raise ValueError(f"{len(targets)} labels do not fit in {frames} frames")
    neg = -np.inf
    score = np.full(n, neg)
    score[0] = log_probs[0, states[0]]
    if n > 1:
        score[1] = log_probs[0, states[1]]
    back = np.zeros((frames, n), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    state_ids = np.asarray(states)
    can_skip = np.zeros(n, dtype=bool)
    for s in range(2, n):
        can_skip[s] = states[s] != blank and states[s] != states[s - 2]
    for t in range(1, frames):
        stay = score
        step = np.concatenate([[neg], score[:-1]])
        skip = np.where(can_skip, np.concatenate([[neg, neg], score[:-2]]), neg)
        choices = np.stack([stay, step, skip])
        back[t] = np.argmax(choices, axis=0)
        score = choices[back[t], np.arange(n)] + log_probs[t, state_ids]
    end = n - 1 if n == 1 or score[n - 1] >= score[n - 2] else n - 2
    if not np.isfinite(score[end]):
        raise ValueError("no alignment path")
    path = [0] * frames
    s = end
    for t in range(frames - 1, -1, -1):
        path[t] = s
        s -= int(back[t, s])
    return path


def label_spans(path_states: list[int], targets: list[int]) -> list[LabelSpan]:
    """Spans of each target label from a state path (state ``2k + 1`` is label ``k``)."""
    spans: dict[int, list[int]] = {}
    for t, s in enumerate(path_states):
        if s % 2 == 1:
            spans.setdefault(s // 2, [t, t + 1])[1] = t + 1
    return [LabelSpan(k, targets[k], spans[k][0], spans[k][1]) for k in sorted(spans)]


def align(log_probs: np.ndarray, targets: list[int], blank: int = 0) -> list[LabelSpan]:
    """Frame span of every target label (``[frames, vocab]`` log-probs, as a CTC model emits them)."""
    if not targets:
        return []
    return label_spans(forced_align(log_probs, targets, blank), targets)
