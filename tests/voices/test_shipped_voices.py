"""The reference voices shipped in ``voices/`` are usable as they are and reproducible from their texts."""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from f5vi.engine.asr import ASR_SAMPLE_RATE
from f5vi.engine.audio import load_audio, prepare_reference, resample
from f5vi.voices import VoiceLibrary

SHIPPED = ("vi_central_male", "vi_north_male", "vi_south_male")

_VOWELS = "aăâeêioôơuưy"
_CONSONANTS = "bcdđghklmnpqrstvx"
_TONE_MARKS = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")  # ngang huyền sắc hỏi ngã nặng
VIETNAMESE_LOWERCASE = frozenset(
    [unicodedata.normalize("NFC", v + mark) for v in _VOWELS for mark in _TONE_MARKS] + list(_CONSONANTS)
)
"""All 72 toned lowercase vowels + the consonants. The ViVoice checkpoint's vocab covers every
lowercase Vietnamese letter (judged from its size: upstream's 2545-entry pinyin vocab plus the 19
lowercase letters that one lacks); the tiny golden vocab lacks some vowels (ĩ, ỉ, ừ, ...)."""


@pytest.fixture(scope="module")
def vocab(golden_dir: Path) -> frozenset[str]:
    lines = (golden_dir / "tiny_v0" / "vocab.txt").read_text(encoding="utf-8").split("\n")
    chars = {line for line in lines if line}
    assert " " in chars and "," in chars
    return frozenset(chars | VIETNAMESE_LOWERCASE | set("abcdefghijklmnopqrstuvwxyz"))


@pytest.fixture(scope="module")
def shipped_dir(repo_root: Path) -> Path:
    return repo_root / "voices"


def test_vietnamese_letter_set_is_complete() -> None:
    assert len(VIETNAMESE_LOWERCASE) == 12 * 6 + 17
    assert {"ĩ", "ỉ", "ừ", "ỹ", "ặ", "đ", "ơ"} <= VIETNAMESE_LOWERCASE
    assert all(len(ch) == 1 for ch in VIETNAMESE_LOWERCASE)  # every letter has a precomposed form


def test_the_three_regional_voices_are_listed(shipped_dir: Path) -> None:
    voices = VoiceLibrary(shipped_dir, None).list()
    assert {v.id for v in voices} >= set(SHIPPED)
    assert all(v.synthetic for v in voices if v.id in SHIPPED)
    assert all("SYNTHETIC" in (v.description or "") for v in voices if v.id in SHIPPED)
    readme = (shipped_dir / "README.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in readme
    assert (shipped_dir / "make_voices.sh").is_file()


@pytest.mark.parametrize("voice_id", SHIPPED)
def test_shipped_voice_is_a_clean_24k_reference(shipped_dir: Path, voice_id: str) -> None:
    info = sf.info(str(shipped_dir / f"{voice_id}.wav"))
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", 24_000, 1)
    assert 4.0 <= info.duration <= 10.0

    voice = VoiceLibrary(shipped_dir, None, max_reference_seconds=12.0).resolve(voice_id)
    assert voice.duration_seconds <= 12.0
    wave, sr = load_audio(voice.audio_path)
    assert sr == 24_000
    prepared = prepare_reference(wave, sr, max_seconds=12.0, target_rms=0.1)
    assert not prepared.clipped
    assert prepared.seconds <= 12.0
    assert prepared.seconds > 0.8 * voice.duration_seconds  # mostly speech, little edge silence
    peak = float(np.abs(wave).max())
    assert 0.1 < peak < 0.99  # audible, not clipped
    at_16k = resample(wave, sr, ASR_SAMPLE_RATE)
    assert abs(len(at_16k) - len(wave) * 2 / 3) <= 1


@pytest.mark.parametrize("voice_id", SHIPPED)
def test_shipped_transcript_fits_the_vocab(shipped_dir: Path, vocab: frozenset[str], voice_id: str) -> None:
    raw = (shipped_dir / f"{voice_id}.txt").read_bytes().decode("utf-8")  # strict UTF-8, no BOM
    assert not raw.startswith("\ufeff")
    text = raw.strip()
    assert raw == text + "\n"
    assert unicodedata.is_normalized("NFC", text)
    assert not any(ch.isdigit() for ch in text)  # espeak-ng reads digits its own way
    assert text[-1] in ".!?"
    outside = sorted(set(text.lower()) - vocab)
    assert outside == [], f"characters outside the vocab: {outside}"
    voice = VoiceLibrary(shipped_dir, None).resolve(voice_id)
    assert voice.transcript == text
    # With a transcript on disk no transcriber is needed (there is none here).
    assert VoiceLibrary(shipped_dir, None).ensure_transcript(voice) is voice


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None, reason="espeak-ng and sox not installed"
)
def test_make_voices_reproduces_the_shipped_files(shipped_dir: Path, tmp_path: Path) -> None:
    for name in ["make_voices.sh", *(f"{v}.txt" for v in SHIPPED)]:
        shutil.copy(shipped_dir / name, tmp_path)
    subprocess.run(["bash", str(tmp_path / "make_voices.sh")], check=True, capture_output=True, timeout=120)
    for voice_id in SHIPPED:
        for suffix in (".wav", ".json"):
            made = (tmp_path / f"{voice_id}{suffix}").read_bytes()
            assert made == (shipped_dir / f"{voice_id}{suffix}").read_bytes(), f"{voice_id}{suffix} differs"
