"""The OpenAPI patterns of voice ids and ``ref_name`` say exactly what the server accepts."""

from __future__ import annotations

import random
import re

import pytest

from f5vi.voices import REF_NAME_PATTERN, VOICE_ID_PATTERN, InvalidVoiceNameError
from f5vi.voices.names import MAX_REF_NAME_CHARS, MAX_VOICE_ID_CHARS, parse_voice_name, validate_voice_id

_PIECES = (
    "a", "Z", "0", "9", ".", "_", "-", "/", ":", " ", "\t", "\n", "\r", "\x0b", "\u00a0", "é", "%2F", "\x00",
    "wav", ".wav", ".WaV", ".txt", ".JSON", ".tmp", "voice:", "sample/", "voices/", "..", "x" * 30, "y" * 62,
)  # fmt: skip


def _accepted(check, value: str) -> bool:
    try:
        check(value)
    except InvalidVoiceNameError:
        return False
    return True


def _strings(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 6))) for _ in range(count)]


EDGES = [
    "vi_north_male", "vi_north_male.wav", "sample/vi_north_male.wav", "voices/vi_north_male.WAV",
    "voice:vi_north_male", "voice:sample/x.wav", " x ", "x..wav", "x.", "x.wav.wav", "x.txt.wav", "x.json",
    "a" * 64, "a" * 65, "a" * 64 + ".wav", "a" * 65 + ".wav", "../x", "x/../y", "x\n", "\nx", ".x", "-x", "",
]  # fmt: skip


def test_voice_id_pattern_matches_the_code() -> None:
    pattern = re.compile(VOICE_ID_PATTERN)
    wrong = [
        value
        for value in EDGES + _strings(15_000, seed=12)
        if (pattern.fullmatch(value) is not None and len(value) <= MAX_VOICE_ID_CHARS)
        != _accepted(validate_voice_id, value)
    ]
    assert wrong == []


def test_ref_name_pattern_matches_the_code() -> None:
    pattern = re.compile(REF_NAME_PATTERN)
    wrong = [
        value
        for value in EDGES + _strings(15_000, seed=13)
        if (pattern.fullmatch(value) is not None and len(value) <= MAX_REF_NAME_CHARS)
        != _accepted(parse_voice_name, value)
    ]
    assert wrong == []


@pytest.mark.parametrize("value", ["vi_north_male", "voice:a.b-c_d", "sample/X.wav"])
def test_accepted_examples(value: str) -> None:
    assert re.fullmatch(REF_NAME_PATTERN, value)
