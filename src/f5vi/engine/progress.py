"""Turn ODE steps of several batches into one monotonic progress fraction.

Work is measured in frame-steps (batch size x padded frames x NFE) so a batch of long chunks
moves the bar more than a batch of short ones. The "synthesizing" stage spans 2 %..95 % of the
engine's share; vocoding each batch is folded into the same span, and ``finish`` reports 1.0.
"""

from __future__ import annotations

from f5vi.engine.types import ProgressCallback

_START = 0.02
_END = 0.97


class ProgressTracker:
    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._last = 0.0
        self._work: list[int] = []
        self._steps = 1
        self._stage = "normalizing"

    def plan_work(self, batch_work: list[int], nfe_step: int, *, total_chunks: int) -> None:
        self._work = batch_work
        self._steps = max(nfe_step, 1)
        self.update(_START, "synthesizing", 0, total_chunks)

    def step(
        self, batch_index: int, step: int, total_steps: int, done_chunks: int, total_chunks: int
    ) -> None:
        total = sum(self._work) or 1
        before = sum(self._work[:batch_index])
        within = self._work[batch_index] * min(step / max(total_steps, 1), 1.0)
        fraction = _START + (_END - _START) * (before + within) / total
        self.update(fraction, "synthesizing", done_chunks, total_chunks)

    def update_stage(self, stage: str, done_chunks: int, total_chunks: int) -> None:
        self.update(self._last, stage, done_chunks, total_chunks)

    def batch_done(self, batch_index: int, done_chunks: int, total_chunks: int) -> None:
        total = sum(self._work) or 1
        fraction = _START + (_END - _START) * sum(self._work[: batch_index + 1]) / total
        self.update(fraction, "vocoding", done_chunks, total_chunks)

    def finish(self, total_chunks: int) -> None:
        self.update(1.0, "done", total_chunks, total_chunks)

    def update(self, fraction: float, stage: str, chunk_index: int, chunk_count: int) -> None:
        fraction = min(max(fraction, self._last), 1.0)  # never goes backwards
        self._last = fraction
        self._stage = stage
        if self._callback is not None:
            self._callback(fraction, stage, chunk_index, chunk_count)
