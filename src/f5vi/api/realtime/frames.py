"""The step every real-time route shares: pieces of a stream -> encoded frames, first-chunk latency.

Both ``WS /tts/stream`` (16-bit PCM frames of at most 1 s) and ``POST /v1/audio/speech`` (one
encoder per response) turn the float32 pieces of an :class:`~f5vi.jobs.streaming.AudioStream` into
bytes off the event loop, and observe the time from the request to the first bytes in the
``first_chunk_latency`` histogram under the route's label.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Callable

import anyio.to_thread
import numpy as np

from f5vi.metrics import Metrics


class FirstChunkClock:
    """Observes the first-chunk latency of one request once, when its first bytes exist."""

    def __init__(self, metrics: Metrics, label: str, received: float | None = None) -> None:
        self.metrics = metrics
        self.label = label
        self.received = time.monotonic() if received is None else received
        self.first_at: float | None = None

    def mark(self) -> None:
        if self.first_at is None:
            self.first_at = time.monotonic()
            self.metrics.first_chunk_latency.labels(self.label).observe(self.first_at - self.received)

    @property
    def first_seconds(self) -> float | None:
        return None if self.first_at is None else self.first_at - self.received


async def split_pieces(pieces: AsyncIterable[np.ndarray], max_samples: int) -> AsyncIterator[np.ndarray]:
    """Each piece in parts of at most ``max_samples`` samples, in order."""
    async for piece in pieces:
        for start in range(0, len(piece), max_samples):
            yield piece[start : start + max_samples]


async def encoded_frames(
    pieces: AsyncIterable[np.ndarray],
    encode: Callable[[np.ndarray], bytes],
    clock: FirstChunkClock,
    finish: Callable[[], bytes] | None = None,
) -> AsyncIterator[bytes]:
    """``encode(piece)`` for each piece (in a worker thread), then ``finish()``; empty results are
    skipped (an encoder may hold bytes back). The clock is marked at the first non-empty frame."""
    async for piece in pieces:
        data = await anyio.to_thread.run_sync(encode, piece)
        if data:
            clock.mark()
            yield data
    if finish is not None:
        tail = await anyio.to_thread.run_sync(finish)
        if tail:
            clock.mark()
            yield tail
