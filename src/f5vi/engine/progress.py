"""Turn the ODE steps of a request's chunks into one monotonic progress fraction.

Work is measured in frame-steps (frames x NFE) so a long chunk moves the bar more than a short one.
The chunks may run in any order and in parallel (they share batches with other requests), so each
chunk's share is counted as its own steps complete. The "synthesizing" stage spans 2 %..97 % of the
engine's share; vocoding follows, and ``finish`` reports 1.0. Updates arrive from the sampling
thread and the request's thread, hence the lock.
"""

from __future__ import annotations

import threading

from f5vi.engine.types import ProgressCallback

_START = 0.02
_END = 0.97


class ProgressTracker:
    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self._last = 0.0
        self._frames: list[int] = []
        self._done: list[float] = []
        self._finished_chunks = 0
        self._stage = "synthesizing"

    def plan_work(self, chunk_frames: list[int], *, total_chunks: int) -> None:
        self._frames = list(chunk_frames)
        self._done = [0.0] * len(chunk_frames)
        self.update(_START, "synthesizing", 0, total_chunks)

    def add_attempts(self, chunk_frames: list[int]) -> int:
        """Verification samples chunks again: their work joins the total (the bar waits, never goes
        back) and from now on the chunk numbers count samplings: done / planned (chunks plus
        re-samplings). Returns the index of the first new one for :meth:`step`."""
        with self._lock:
            offset = len(self._frames)
            self._frames.extend(chunk_frames)
            self._done.extend([0.0] * len(chunk_frames))
            self._stage = "resampling"
            done, count = self._finished_chunks, len(self._frames)
        self.update(self._last, "resampling", done, count)
        return offset

    def verifying(self) -> None:
        """The sampled chunks are being transcribed (chunk numbers: samplings done / planned)."""
        with self._lock:
            done, count = self._finished_chunks, len(self._frames)
        self.update(self._last, "verifying", done, count)

    def step(self, index: int, step: int, total_steps: int) -> None:
        """Chunk ``index`` has taken ``step`` of its ``total_steps`` ODE steps."""
        with self._lock:
            self._done[index] = min(step / max(total_steps, 1), 1.0)
            if step >= total_steps:
                self._finished_chunks += 1
            total = sum(self._frames) or 1
            done = sum(f * d for f, d in zip(self._frames, self._done, strict=True))
            chunks, count = self._finished_chunks, len(self._frames)
            stage = self._stage
        self.update(_START + (_END - _START) * done / total, stage, chunks, count)

    def chunk_done(self, done_chunks: int, total_chunks: int) -> None:
        """A chunk's audio is ready (streaming vocodes each chunk as it finishes)."""
        self.update(self._last, "vocoding", done_chunks, total_chunks)

    def update_stage(self, stage: str, done_chunks: int, total_chunks: int) -> None:
        self.update(self._last, stage, done_chunks, total_chunks)

    def finish(self, total_chunks: int) -> None:
        self.update(1.0, "done", total_chunks, total_chunks)

    def update(self, fraction: float, stage: str, chunk_index: int, chunk_count: int) -> None:
        with self._lock:
            fraction = min(max(fraction, self._last), 1.0)  # never goes backwards
            self._last = fraction
        if self._callback is not None:
            self._callback(fraction, stage, chunk_index, chunk_count)
