"""Check what a chunk says: transcribe it, compare with its text, sample it again if it is wrong.

F5-TTS's best-known failure is the wrong words (a word dropped, repeated or garbled, worst in short
sentences); upstream's answer is "sample again with another seed". With verification on, every chunk
once synthesised is transcribed (PhoWhisper, :class:`~f5vi.engine.asr.Transcriber`, several chunks per
batch where they are ready together) and its character error rate against the text the model was
given is computed through one canonicaliser (:mod:`f5vi.engine.text.canonical`). Above the threshold
the chunk is sampled again with the seed :func:`attempt_seed` gives, up to the attempt limit; the
attempt with the lowest CER is kept (the earliest on a tie).

Attempt 1 uses the request's seed, exactly as an unverified run: a chunk that passes at once sounds
exactly as without verification. Later attempts' seeds depend only on the request's seed, the chunk
and the attempt, so a verified request is as reproducible as any other.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from f5vi.engine.asr import Transcriber
from f5vi.engine.text.canonical import character_error_rate
from f5vi.engine.types import SAMPLE_RATE, ChunkVerification, VerifyOptions

__all__ = ["Attempt", "ChunkBest", "ChunkVerification", "Scorer", "VerifyOptions", "attempt_seed"]


def attempt_seed(seed: int, chunk: int, attempt: int) -> int:
    """The seed of ``attempt`` (1-based) of ``chunk``: the request's seed first, then derived from it."""
    if attempt <= 1:
        return seed
    digest = hashlib.blake2b(f"f5vi-verify:{seed}:{chunk}:{attempt}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


@dataclass
class Attempt:
    """One sampled version of a chunk and its score."""

    wave: np.ndarray
    seed: int
    cer: float
    transcript: str


@dataclass
class ChunkBest:
    """The best attempt of a chunk so far and how many were made."""

    best: Attempt
    attempts: int = 1

    def offer(self, attempt: Attempt) -> None:
        self.attempts += 1
        if attempt.cer < self.best.cer:  # strictly better: the earliest wins a tie
            self.best = attempt

    def passed(self, options: VerifyOptions) -> bool:
        return self.best.cer <= options.max_cer

    def done(self, options: VerifyOptions) -> bool:
        return self.passed(options) or self.attempts >= options.max_attempts

    def report(self, chunk: int, options: VerifyOptions) -> ChunkVerification:
        return ChunkVerification(
            chunk=chunk,
            cer=self.best.cer,
            attempts=self.attempts,
            seed=self.best.seed,
            transcript=self.best.transcript,
            passed=self.passed(options),
        )


class Scorer:
    """Transcribe waves and score them against their texts; counts the ASR time it spent."""

    def __init__(self, transcriber: Transcriber) -> None:
        self.transcriber = transcriber
        self.seconds = 0.0
        self.audio_seconds = 0.0

    def score(self, waves: list[np.ndarray], texts: list[str], seeds: list[int]) -> list[Attempt]:
        started = time.perf_counter()
        transcripts = self.transcriber.transcribe_many(waves, SAMPLE_RATE)
        self.seconds += time.perf_counter() - started
        self.audio_seconds += sum(len(w) for w in waves) / SAMPLE_RATE
        return [
            Attempt(wave=w, seed=s, cer=character_error_rate(t, heard), transcript=heard)
            for w, t, s, heard in zip(waves, texts, seeds, transcripts, strict=True)
        ]
