"""A tiny random-weight Whisper for the tests: the demo recogniser of :mod:`f5vi.engine.demo_asr`.

Real PhoWhisper cannot be downloaded in tests, so the tests run the real :class:`Transcriber` code path
on it; see that module for how its output is constrained.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from f5vi.engine.demo_asr import LETTERS, build_tiny_whisper

__all__ = ["LETTERS", "build_tiny_whisper", "tiny_whisper"]

_CACHE: dict[tuple[str, bool], Path] = {}


def tiny_whisper(
    factory: pytest.TempPathFactory, *, allowed_text: str = LETTERS, legacy_generation_config: bool = False
) -> Path:
    """Build once per test session (per variant) and return the model directory."""
    key = (allowed_text, legacy_generation_config)
    if key not in _CACHE:
        _CACHE[key] = build_tiny_whisper(
            factory.mktemp("tiny-whisper"),
            allowed_text=allowed_text,
            legacy_generation_config=legacy_generation_config,
        )
    return _CACHE[key]
