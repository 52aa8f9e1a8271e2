"""CTC forced alignment (our Viterbi) on emission matrices whose frame labels are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchaudio.functional

from f5vi.engine.timing.ctc import align, forced_align


def _emissions(frame_labels: list[int], vocab: int, confidence: float = 0.9, seed: int = 0) -> np.ndarray:
    """Log-probs where frame t puts ``confidence`` on its label and noise on the rest."""
    rng = np.random.default_rng(seed)
    probs = rng.uniform(0.0, 1.0, (len(frame_labels), vocab))
    probs *= (1 - confidence) / probs.sum(axis=1, keepdims=True)
    probs[np.arange(len(frame_labels)), frame_labels] += confidence
    return np.log(probs)


def _runs(frame_labels: list[int], blank: int) -> list[tuple[int, int, int]]:
    """(label, start, end) of each run of a non-blank label in the known frame labels."""
    runs: list[tuple[int, int, int]] = []
    for t, label in enumerate(frame_labels):
        if label == blank:
            continue
        if runs and runs[-1][0] == label and runs[-1][2] == t:
            runs[-1] = (label, runs[-1][1], t + 1)
        else:
            runs.append((label, t, t + 1))
    return runs


def test_alignment_recovers_the_known_frame_labels() -> None:
    frame_labels = [0] * 4 + [3] * 6 + [0] * 2 + [3] * 3 + [5] * 9 + [7] * 5 + [0] * 3 + [2] * 11 + [0] * 7
    runs = _runs(frame_labels, blank=0)
    targets = [label for label, _, _ in runs]
    assert targets == [3, 3, 5, 7, 2]  # a repeated label, separated by blanks
    spans = align(_emissions(frame_labels, vocab=9), targets, blank=0)
    assert [(s.label, s.start, s.end) for s in spans] == runs


def test_alignment_agrees_with_torchaudio() -> None:
    rng = np.random.default_rng(3)
    for trial in range(5):
        frame_labels = [int(x) for x in np.repeat(rng.integers(0, 6, 12), rng.integers(1, 6, 12))]
        targets = [label for label, _, _ in _runs(frame_labels, blank=0)]
        log_probs = _emissions(frame_labels, vocab=6, confidence=0.6, seed=trial)
        ours = forced_align(log_probs, targets, blank=0)
        theirs, _ = torchaudio.functional.forced_align(
            torch.tensor(log_probs, dtype=torch.float32)[None],
            torch.tensor([targets], dtype=torch.int32),
            blank=0,
        )
        states = [0, *[x for label in targets for x in (label, 0)]]
        assert [states[s] for s in ours] == theirs[0].tolist()


def test_more_labels_than_frames_is_refused() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        align(_emissions([1, 2, 3], vocab=5), [1, 2, 3, 4], blank=0)
    with pytest.raises(ValueError, match="do not fit"):  # a repeat needs a blank between its labels
        align(_emissions([1, 0, 1], vocab=5), [1, 1, 1], blank=0)
