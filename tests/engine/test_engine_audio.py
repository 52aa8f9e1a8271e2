"""Audio I/O, reference preparation on real (espeak-ng) Vietnamese speech, cross-fades and encoders."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from f5vi.engine.audio import (
    UnsupportedAudioFormatError,
    cross_fade_concat,
    encode_audio,
    load_audio,
    prepare_reference,
    prepare_reference_file,
    resample,
)
from f5vi.engine.errors import InvalidParameterError, InvalidReferenceError
from f5vi.formats import FORMATS, available_formats

SR = 24_000
SENTENCES = (
    "Xin chào các bạn, hôm nay trời đẹp quá.",
    "Tôi đang học nói tiếng Việt mỗi ngày.",
    "Chúng ta cùng nhau đi dạo công viên nhé.",
    "Thành phố Hồ Chí Minh rất đông người.",
)


@pytest.fixture(scope="session")
def utterances(tmp_path_factory) -> list[np.ndarray]:
    """Vietnamese sentences spoken by espeak-ng, resampled to 24 kHz, edge silence removed."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.fail("espeak-ng is required for the speech tests (`make sysdeps` installs it)")
    directory = tmp_path_factory.mktemp("espeak")
    out = []
    for i, sentence in enumerate(SENTENCES):
        path = directory / f"u{i}.wav"
        subprocess.run([espeak, "-v", "vi", "-w", str(path), sentence], check=True, timeout=60)
        wave, sr = sf.read(path, dtype="float32")
        wave = resample(wave, sr, SR)
        loud = np.nonzero(np.abs(wave) > 0.01)[0]
        out.append(wave[loud[0] : loud[-1] + 1].copy())
    return out


def _noise(n: int, seed: int, level: float = 1e-3) -> np.ndarray:
    """A -60 dBFS noise floor: real recordings are never digitally silent."""
    return (level * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def _join(parts: list[np.ndarray], gap_seconds: float, lead: float = 1.0) -> tuple[np.ndarray, list[tuple]]:
    """Utterances separated by ``gap_seconds`` of silence, plus a noise floor; returns (wave, spans)."""
    gap = np.zeros(int(gap_seconds * SR), dtype=np.float32)
    pieces, spans, pos = [np.zeros(int(lead * SR), dtype=np.float32)], [], int(lead * SR)
    for part in parts:
        pieces += [part, gap]
        spans.append((pos, pos + part.size))
        pos += part.size + gap.size
    wave = np.concatenate(pieces)
    return wave + _noise(wave.size, seed=len(parts)), spans


def _locate(haystack: np.ndarray, needle: np.ndarray) -> int:
    """Index where ``needle`` occurs contiguously in ``haystack`` (within float tolerance)."""
    for start in np.nonzero(np.abs(haystack - needle[0]) < 1e-7)[0]:
        if start + needle.size <= haystack.size and np.allclose(
            haystack[start : start + needle.size], needle, atol=1e-6
        ):
            return int(start)
    raise AssertionError("prepared audio is not a contiguous slice of the input")


def _rms_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20)


# --------------------------------------------------------------------------------------------------
# Reference preparation


def test_long_reference_is_clipped_at_a_silence(utterances):
    wave, spans = _join(utterances * 2, gap_seconds=1.5)  # ~8 sentences, > 20 s
    assert wave.size / SR > 18
    prepared = prepare_reference(wave, SR, max_seconds=12.0)
    assert prepared.clipped
    assert prepared.seconds <= 12.0 + 0.05
    assert prepared.original_seconds == pytest.approx(wave.size / SR)
    tail = round(0.05 * SR)
    assert not prepared.wave_24k[-tail:].any()
    body = prepared.restore_loudness(prepared.wave_24k[:-tail])
    start = _locate(wave, body)
    end = start + body.size
    # It starts at the first sentence, ends with a whole sentence, and the cut lies in a pause.
    assert abs(start - spans[0][0]) < 0.02 * SR
    kept = [i for i, (a, b) in enumerate(spans) if a >= start and b <= end + 0.02 * SR]
    assert kept == list(range(len(kept))) and len(kept) >= 2
    assert end >= spans[kept[-1]][1] - 0.02 * SR
    assert end < spans[kept[-1] + 1][0], "the cut must not reach into the next sentence"
    assert _rms_db(wave[end : end + SR // 10]) < -50
    # The next sentence would not have fitted into 12 s.
    assert (spans[kept[-1] + 1][1] - start) / SR > 12.0


def test_clipping_falls_back_to_short_pauses(utterances):
    wave, _ = _join(utterances * 3, gap_seconds=0.4)  # no 1 s silence anywhere
    assert wave.size / SR > 20
    prepared = prepare_reference(wave, SR, max_seconds=12.0)
    assert prepared.clipped
    assert 6.0 < prepared.seconds <= 12.05
    body = prepared.restore_loudness(prepared.wave_24k[: -round(0.05 * SR)])
    end = _locate(wave, body) + body.size
    assert _rms_db(wave[end : end + SR // 20]) < -40, "cut inside a pause (between or within sentences)"


def test_hard_cut_without_any_pause():
    t = np.arange(20 * SR) / SR
    rng = np.random.default_rng(1)
    wave = (0.3 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    wave += 0.01 * rng.standard_normal(t.size).astype(np.float32)
    prepared = prepare_reference(wave, SR, max_seconds=12.0)
    assert prepared.clipped
    assert prepared.seconds == pytest.approx(12.05, abs=0.011)
    body = prepared.wave_24k[: -round(0.05 * SR)]
    assert np.abs(body[-5:]).max() < 0.01 * np.abs(body).max(), "hard cut is faded out, no click"


def test_short_reference_keeps_its_sound_and_is_trimmed(utterances):
    speech = np.concatenate([utterances[0], np.zeros(SR // 2, dtype=np.float32), utterances[1]])
    padded = np.concatenate([np.zeros(2 * SR, np.float32), speech, np.zeros(3 * SR // 2, np.float32)])
    padded += _noise(padded.size, seed=5)
    prepared = prepare_reference(padded, SR)
    assert not prepared.clipped
    tail = round(0.05 * SR)
    assert prepared.wave_24k.size == pytest.approx(speech.size + tail, abs=0.02 * SR)
    assert not prepared.wave_24k[-tail:].any()
    body = prepared.restore_loudness(prepared.wave_24k[:-tail])
    assert abs(_locate(padded, body) - 2 * SR) < 0.011 * SR, "leading silence trimmed to the 10 ms chunk"
    assert np.abs(body[: SR // 50]).max() > 0.05 and np.abs(body[-SR // 50 :]).max() > 0.05


def test_long_inner_silences_are_shortened_like_upstream(utterances):
    wave, _ = _join(utterances[:2], gap_seconds=5.0)
    prepared = prepare_reference(wave, SR)
    speech = utterances[0].size + utterances[1].size
    # a 5 s pause keeps at most 1 s on each side of it
    assert prepared.wave_24k.size <= speech + 2 * SR + round(0.05 * SR) + 0.02 * SR
    assert prepared.wave_24k.size >= speech + 1.9 * SR
    assert not prepared.clipped


def test_quiet_reference_is_normalised_and_restorable(utterances):
    loud_ref = np.concatenate([utterances[2], np.zeros(SR // 3, np.float32), utterances[3]])
    quiet = 0.02 * loud_ref + _noise(loud_ref.size, seed=3, level=2e-5)
    prepared = prepare_reference(quiet, SR, target_rms=0.1)
    rms_after = float(np.sqrt(np.mean(np.square(prepared.wave_24k, dtype=np.float64))))
    assert rms_after == pytest.approx(0.1, rel=1e-4)
    assert prepared.rms_scale > 5.0
    restored = prepared.restore_loudness(prepared.wave_24k)
    assert float(np.sqrt(np.mean(np.square(restored, dtype=np.float64)))) == pytest.approx(
        0.1 / prepared.rms_scale, rel=1e-4
    )
    body = restored[: -round(0.05 * SR)]
    _locate(quiet, body)  # unchanged audio apart from the gain
    # relative thresholds: a quiet recording is trimmed like the same recording at full level
    loud = prepare_reference(loud_ref + _noise(loud_ref.size, seed=3, level=1e-3), SR)
    assert abs(loud.wave_24k.size - prepared.wave_24k.size) < 0.03 * SR


def test_loud_reference_is_not_scaled(utterances):
    speech = np.concatenate(utterances[:2])
    speech = 0.3 * speech / float(np.sqrt(np.mean(speech**2)))
    prepared = prepare_reference(np.clip(speech, -1, 1), SR)
    assert prepared.rms_scale == 1.0
    out = prepared.wave_24k
    assert prepared.restore_loudness(out) is out


def test_44k_stereo_file_becomes_24k_mono(tmp_path, utterances):
    speech = np.concatenate([utterances[0], np.zeros(SR // 4, np.float32), utterances[3]])
    at_44k = 0.5 * resample(speech, SR, 44_100)  # headroom: PCM cannot hold resampling overshoot
    stereo = np.stack([at_44k, 0.5 * at_44k], axis=1)
    path = tmp_path / "ref.wav"
    sf.write(path, stereo, 44_100, subtype="PCM_24")  # like the seed's 44.1 kHz/24-bit voices
    mono, sr = load_audio(path)
    assert sr == 44_100 and mono.ndim == 1 and mono.dtype == np.float32
    assert np.allclose(mono, 0.75 * at_44k, atol=1e-5)
    prepared = prepare_reference_file(path)
    assert prepared.sample_rate == SR and prepared.wave_24k.ndim == 1
    assert prepared.seconds == pytest.approx(speech.size / SR + 0.05, abs=0.03)
    direct = prepare_reference(0.375 * speech, SR)
    n = min(direct.wave_24k.size, prepared.wave_24k.size)
    offset = _best_lag(direct.wave_24k[:n], prepared.wave_24k[:n])
    a = direct.wave_24k[max(0, offset) : n + min(0, offset)]
    b = prepared.wave_24k[max(0, -offset) : n - max(0, offset)]
    assert np.corrcoef(a, b)[0, 1] > 0.99, "44.1 kHz stereo path == 24 kHz mono path"


def _best_lag(a: np.ndarray, b: np.ndarray, max_lag: int = 480) -> int:
    lags = range(-max_lag, max_lag + 1)
    scores = [
        float(np.dot(a[max(0, k) : a.size + min(0, k)], b[max(0, -k) : b.size - max(0, k)])) for k in lags
    ]
    return list(lags)[int(np.argmax(scores))]


def test_prepare_accepts_channels_first_and_last(utterances):
    speech = np.concatenate(utterances[:2])
    last = prepare_reference(np.stack([speech, speech], axis=1), SR)
    first = prepare_reference(np.stack([speech, speech], axis=0), SR)
    mono = prepare_reference(speech, SR)
    assert np.array_equal(last.wave_24k, mono.wave_24k) and np.array_equal(first.wave_24k, mono.wave_24k)


# --------------------------------------------------------------------------------------------------
# Invalid references


def test_text_file_renamed_wav_is_rejected(tmp_path):
    path = tmp_path / "fake.wav"
    path.write_text("this is not audio, just text pretending to be a wav file\n" * 20)
    with pytest.raises(InvalidReferenceError, match="cannot read"):
        load_audio(path)
    with pytest.raises(InvalidReferenceError):
        prepare_reference_file(path)
    with pytest.raises(InvalidReferenceError):
        load_audio(b"RIFF\x00\x00garbage")
    with pytest.raises(InvalidReferenceError):
        load_audio(tmp_path / "missing.wav")


def test_too_short_reference_is_rejected(tmp_path, utterances):
    short = utterances[0][: int(0.3 * SR)]
    path = tmp_path / "short.wav"
    sf.write(path, short, SR)
    with pytest.raises(InvalidReferenceError, match="at least 1 s"):
        prepare_reference_file(path)
    # 0.3 s of sound inside 3 s of silence is just as unusable
    padded = np.concatenate([np.zeros(SR, np.float32), short, np.zeros(2 * SR, np.float32)])
    with pytest.raises(InvalidReferenceError, match="at least 1 s"):
        prepare_reference(padded + _noise(padded.size, seed=2), SR)


def test_silent_reference_is_rejected(tmp_path):
    path = tmp_path / "zeros.wav"
    sf.write(path, np.zeros(3 * SR, np.float32), SR)
    with pytest.raises(InvalidReferenceError, match="silent"):
        prepare_reference_file(path)
    with pytest.raises(InvalidReferenceError, match="silent"):
        prepare_reference(_noise(3 * SR, seed=4, level=1e-4), SR)  # -80 dBFS hiss only


def test_non_finite_reference_is_rejected(utterances):
    for bad in (np.nan, np.inf, -np.inf):
        wave = np.concatenate(utterances[:2]).copy()
        wave[1000] = bad
        with pytest.raises(InvalidReferenceError, match="NaN"):
            prepare_reference(wave, SR)
    buffer = io.BytesIO()
    sf.write(buffer, np.array([0.1, np.nan, 0.2] * 10_000, np.float32), SR, format="WAV", subtype="FLOAT")
    with pytest.raises(InvalidReferenceError, match="NaN"):
        load_audio(buffer.getvalue())


def test_empty_audio_is_rejected():
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(0, np.float32), SR, format="WAV")
    with pytest.raises(InvalidReferenceError, match="no samples"):
        load_audio(buffer.getvalue())
    with pytest.raises(InvalidReferenceError):
        prepare_reference(np.zeros(0, np.float32), SR)
    assert issubclass(InvalidReferenceError, Exception) and InvalidReferenceError.code == "invalid_reference"


# --------------------------------------------------------------------------------------------------
# Cross-fade


def test_cross_fade_length_arithmetic():
    chunks = [
        np.ones(1000, np.float32),
        np.ones(500, np.float32),
        np.ones(50, np.float32),
        np.ones(800, np.float32),
    ]
    fade = 240 / SR  # 240 samples
    # overlaps: min(240, 1000, 500) = 240; min(240, 500 - 240, 50) = 50; min(240, 50 - 50, 800) = 0
    assert cross_fade_concat(chunks, SR, fade).size == 2350 - 240 - 50 - 0
    assert cross_fade_concat(chunks, SR, 0.0).size == 2350
    # fade longer than everything: 500 (all of chunk 2), 0 (chunk 2 is used up), 50 (all of chunk 3)
    assert cross_fade_concat(chunks, SR, 10.0).size == 2350 - 500 - 0 - 50
    assert cross_fade_concat([np.zeros(0), chunks[0], np.zeros(0)], SR, fade).size == 1000
    assert cross_fade_concat([], SR, fade).size == 0


def test_linear_cross_fade_of_overlapping_takes_is_seamless():
    t = np.arange(3 * SR) / SR
    signal = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    n = int(0.15 * SR)
    a, b, c = signal[: SR + n], signal[SR : 2 * SR + n], signal[2 * SR :]
    joined = cross_fade_concat([a, b, c], SR, 0.15)
    assert joined.size == signal.size
    assert np.abs(joined - signal).max() < 1e-6


def test_cross_fade_removes_the_click_between_unrelated_chunks():
    t = np.arange(SR // 2) / SR
    a = (0.8 * np.sin(2 * np.pi * 200 * t + 0.3)).astype(np.float32)
    b = (-0.8 * np.sin(2 * np.pi * 300 * t + 1.1)).astype(np.float32)
    within = max(np.abs(np.diff(a)).max(), np.abs(np.diff(b)).max())
    hard = np.concatenate([a, b])
    assert np.abs(np.diff(hard)).max() > 3 * within  # the click a plain join makes
    for curve in ("linear", "equal_power"):
        joined = cross_fade_concat([a, b], SR, 0.05, curve=curve)
        assert joined.size == a.size + b.size - int(0.05 * SR)
        assert np.abs(np.diff(joined)).max() <= 1.5 * within, curve
        assert np.array_equal(joined[: a.size - int(0.05 * SR)], a[: a.size - int(0.05 * SR)])
        assert np.array_equal(joined[a.size :], b[int(0.05 * SR) :])


def test_equal_power_keeps_power_of_uncorrelated_noise():
    rng = np.random.default_rng(0)
    n = 4800
    a = rng.standard_normal(n * 4).astype(np.float32)
    b = rng.standard_normal(n * 4).astype(np.float32)
    overlap = slice(3 * n, 4 * n)
    eq = cross_fade_concat([a, b], SR, n / SR, curve="equal_power")[overlap]
    lin = cross_fade_concat([a, b], SR, n / SR, curve="linear")[overlap]
    assert np.mean(eq**2) == pytest.approx(1.0, abs=0.08)
    assert np.mean(lin**2) < 0.75  # the dip linear fades make on uncorrelated signals
    with pytest.raises(ValueError):
        cross_fade_concat([a, b], SR, 0.1, curve="cubic")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Encoding


def test_this_libsndfile_writes_every_format():
    assert set(available_formats()) == set(FORMATS) == {"wav", "flac", "ogg", "opus", "mp3", "pcm"}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_encoded_audio_decodes_to_same_length_and_rate(fmt, utterances):
    wave = np.concatenate(utterances[:2])
    data = encode_audio(wave, SR, fmt)
    assert isinstance(data, bytes) and len(data) > 1000
    if fmt == "pcm":
        decoded, sr = sf.read(
            io.BytesIO(data),
            format="RAW",
            samplerate=SR,
            channels=1,
            subtype="PCM_16",
            endian="LITTLE",
            dtype="float32",
        )
        assert len(data) == 2 * wave.size
        ints = np.frombuffer(data, "<i2").astype(np.float64)
        assert np.abs(ints / 32767 - np.clip(wave, -1, 1)).max() <= 2 / 32767  # signed 16-bit little-endian
    else:
        decoded, sr = load_audio(data)
    assert sr == SR
    assert decoded.shape == wave.shape
    if fmt in ("wav", "flac", "pcm"):
        assert np.abs(decoded - np.clip(wave, -1, 1)).max() <= 2 / 32767
    else:
        assert np.corrcoef(decoded, wave)[0, 1] > 0.9


def test_opus_at_other_rates_is_resampled_to_48k(utterances):
    wave = resample(np.concatenate(utterances[:1]), SR, 22_050)
    info = sf.info(io.BytesIO(encode_audio(wave, 22_050, "opus")))
    assert info.samplerate == 48_000
    assert info.frames == pytest.approx(wave.size * 48_000 / 22_050, abs=2)


def test_encode_clips_out_of_range_samples():
    wave = np.array([0.0, 2.0, -3.0, 0.5], np.float32)
    decoded, _ = sf.read(io.BytesIO(encode_audio(wave, SR, "wav")), dtype="float32")
    assert decoded[1] == pytest.approx(1.0, abs=1e-4) and decoded[2] == pytest.approx(-1.0, abs=1e-4)


def test_unsupported_format_raises_typed_error():
    for fmt in ("aac", "m4a", ""):
        with pytest.raises(UnsupportedAudioFormatError, match="unsupported audio format"):
            encode_audio(np.zeros(100, np.float32), SR, fmt)
    assert issubclass(UnsupportedAudioFormatError, InvalidParameterError)
    assert encode_audio(np.zeros(100, np.float32), SR, "WAV")[:4] == b"RIFF"


def test_load_audio_reads_paths_bytes_and_file_objects(tmp_path: Path, utterances):
    wave = utterances[1]
    path = tmp_path / "x.flac"
    path.write_bytes(encode_audio(wave, SR, "flac"))
    from_path = load_audio(path)
    from_str = load_audio(str(path))
    from_bytes = load_audio(path.read_bytes())
    with path.open("rb") as handle:
        from_handle = load_audio(handle)
    for got, sr in (from_path, from_str, from_bytes, from_handle):
        assert sr == SR and np.array_equal(got, from_path[0])
