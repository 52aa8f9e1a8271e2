"""Audio I/O and reference-clip preparation (numpy + soundfile; resampling in :mod:`f5vi.engine.resample`).

Reference preparation follows upstream F5-TTS' ``preprocess_ref_audio_text`` + ``infer_batch_process``
with pydub replaced by numpy: split on long silences (>= 1 s at -50 dBFS, keeping up to 1 s of each
silence) and keep whole segments while the clip stays <= ``max_seconds`` (once it is past half of it);
if that is still too long, retry with short silences (>= 100 ms at -40 dBFS); else cut hard. Then trim
edge silence (10 ms chunks under -42 dBFS), append 50 ms of silence and RMS-normalise a quiet clip up to
``target_rms``. Unlike upstream, the silence thresholds are lowered for quiet recordings (see
:func:`_silence_thresholds`) so a clean but quiet reference is not mistaken for silence.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import soundfile as sf

from f5vi.engine.errors import InvalidParameterError, InvalidReferenceError, memory_guard
from f5vi.engine.resample import resample
from f5vi.engine.types import SAMPLE_RATE
from f5vi.formats import FORMATS, AudioFormat, available_formats

AudioSource = str | Path | bytes | bytearray | BinaryIO

CHUNK_MS = 10
"""Analysis step for silence detection (pydub's ``seek_step`` / trim chunk in upstream)."""
TAIL_SILENCE_SECONDS = 0.05
NOMINAL_LOUD_DBFS = -12.0
"""Loudness of the loud frames of a normally levelled recording; upstream's fixed thresholds fit it."""
SILENT_BELOW_DBFS = -60.0
"""A clip whose loud frames are quieter than this is treated as silent."""
HARD_CUT_FADE_SECONDS = 0.02
MIN_REFERENCE_SAMPLE_RATE = 8_000
"""Below telephone bandwidth a clip carries too little of a voice to clone."""
MAX_REFERENCE_SAMPLE_RATE = 384_000
"""The highest rate recorders write; also bounds the resampling filter (~12 x rate / 24 kHz taps)."""


class UnsupportedAudioFormatError(InvalidParameterError):
    """The requested output format is unknown or this libsndfile build cannot write it."""


def writable_format(name: str) -> AudioFormat:
    """The :data:`~f5vi.formats.FORMATS` entry for ``name`` if this machine can write it."""
    spec = FORMATS.get(name.lower())
    available = available_formats()
    if spec is None or spec.name not in available:
        raise UnsupportedAudioFormatError(
            f"unsupported audio format {name!r}; available: {', '.join(available)}"
        )
    return spec


# --------------------------------------------------------------------------------------------------
# Loading and resampling


def load_audio(source: AudioSource) -> tuple[np.ndarray, int]:
    """Read any format libsndfile can (wav, flac, ogg/vorbis/opus, mp3, ...) -> (float32 mono, sr).

    Channels are averaged. Unreadable data, empty audio or non-finite samples raise
    :class:`InvalidReferenceError`.
    """
    handle: str | BinaryIO
    if isinstance(source, bytes | bytearray):
        handle = io.BytesIO(bytes(source))
    elif isinstance(source, str | Path):
        handle = str(source)
    else:
        handle = source
    try:
        with memory_guard("decode the audio"):
            data, sr = sf.read(handle, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError, EOFError) as exc:
        raise InvalidReferenceError(f"cannot read the audio (not a supported audio file?): {exc}") from exc
    if data.shape[0] == 0:
        raise InvalidReferenceError("the audio file contains no samples")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    _check_finite(mono)
    return np.ascontiguousarray(mono, dtype=np.float32), int(sr)


def _check_finite(wave: np.ndarray) -> None:
    if not np.isfinite(wave).all():
        bad = int((~np.isfinite(wave)).sum())
        raise InvalidReferenceError(f"the audio contains {bad} NaN/infinite samples")


def _to_mono(wave: np.ndarray) -> np.ndarray:
    """``[N]``, ``[N, C]`` (soundfile's layout) or ``[C, N]`` with C <= 8 -> ``[N]`` float32."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 1:
        return wave
    if wave.ndim == 2:
        if wave.shape[1] <= 8:
            return wave.mean(axis=1, dtype=np.float32)
        if wave.shape[0] <= 8:
            return wave.mean(axis=0, dtype=np.float32)
    raise InvalidReferenceError(f"expected mono or multi-channel audio, got an array of shape {wave.shape}")


# --------------------------------------------------------------------------------------------------
# Reference preparation


@dataclass(frozen=True)
class PreparedReference:
    """A reference clip ready for the mel extractor.

    ``wave_24k`` is what the model hears (24 kHz mono float32, already multiplied by ``rms_scale``);
    generated audio must be multiplied by ``1 / rms_scale`` (:meth:`restore_loudness`) to sound as loud
    as the original reference. ``clipped`` is True when speech was dropped to fit ``max_seconds``: a
    transcript of the original file no longer matches and must be redone for the clipped audio.
    """

    wave_24k: np.ndarray
    seconds: float
    rms_scale: float
    clipped: bool
    original_seconds: float
    sample_rate: int = SAMPLE_RATE

    def restore_loudness(self, wave: np.ndarray) -> np.ndarray:
        return wave if self.rms_scale == 1.0 else (wave / self.rms_scale).astype(wave.dtype, copy=False)


def prepare_reference(
    wave: np.ndarray,
    sr: int,
    max_seconds: float = 12.0,
    target_rms: float = 0.1,
    min_seconds: float = 1.0,
) -> PreparedReference:
    """Mono, 24 kHz, clip to ``max_seconds`` at silences, trim, add 50 ms tail, RMS-normalise.

    Raises :class:`InvalidReferenceError` for empty, non-finite or silent audio, a sample rate outside
    :data:`MIN_REFERENCE_SAMPLE_RATE`-:data:`MAX_REFERENCE_SAMPLE_RATE`, and when less than
    ``min_seconds`` of sound is left after trimming silence; :class:`InsufficientMemoryError` when the
    machine has no memory left for the (bounded) work.
    """
    with memory_guard("prepare the reference audio"):
        return _prepare_reference(wave, sr, max_seconds, target_rms, min_seconds)


def _prepare_reference(
    wave: np.ndarray, sr: int, max_seconds: float, target_rms: float, min_seconds: float
) -> PreparedReference:
    if not MIN_REFERENCE_SAMPLE_RATE <= sr <= MAX_REFERENCE_SAMPLE_RATE:
        raise InvalidReferenceError(
            f"the reference audio has a sample rate of {sr} Hz; accepted are "
            f"{MIN_REFERENCE_SAMPLE_RATE}-{MAX_REFERENCE_SAMPLE_RATE} Hz"
        )
    mono = _to_mono(wave)
    if mono.size == 0:
        raise InvalidReferenceError("the reference audio is empty")
    _check_finite(mono)
    original_seconds = mono.size / sr
    audio = resample(mono, sr, SAMPLE_RATE)

    loud_db = _loud_level_db(audio, SAMPLE_RATE)
    if loud_db < SILENT_BELOW_DBFS:
        raise InvalidReferenceError(
            f"the reference audio is silent (loudest parts at {loud_db:.0f} dBFS); upload a clear recording"
        )
    thresholds = _silence_thresholds(loud_db)

    audio, clipped = _clip_at_silences(audio, SAMPLE_RATE, max_seconds, thresholds)
    audio = _trim_edges(audio, SAMPLE_RATE, thresholds["trim"])
    if audio.size < min_seconds * SAMPLE_RATE:
        raise InvalidReferenceError(
            f"the reference audio has only {audio.size / SAMPLE_RATE:.2f} s of sound after trimming silence; "
            f"at least {min_seconds:g} s is needed (3-{max_seconds:g} s of clear speech works best)"
        )
    tail = np.zeros(round(TAIL_SILENCE_SECONDS * SAMPLE_RATE), dtype=np.float32)
    audio = np.concatenate([audio, tail])

    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    scale = target_rms / rms if rms < target_rms else 1.0
    if scale != 1.0:
        audio = (audio * scale).astype(np.float32)
    return PreparedReference(
        wave_24k=np.ascontiguousarray(audio, dtype=np.float32),
        seconds=audio.size / SAMPLE_RATE,
        rms_scale=float(scale),
        clipped=clipped,
        original_seconds=original_seconds,
    )


def prepare_reference_file(source: AudioSource, **kwargs: float) -> PreparedReference:
    """:func:`load_audio` then :func:`prepare_reference`."""
    wave, sr = load_audio(source)
    return prepare_reference(wave, sr, **kwargs)


def _chunk_db(wave: np.ndarray, chunk: int) -> np.ndarray:
    """dBFS (RMS, full scale 1.0, floor -200) of consecutive ``chunk``-sample blocks, the partial last too."""
    n_chunks = -(-wave.size // chunk)
    padded = np.zeros(n_chunks * chunk, dtype=np.float64)
    padded[: wave.size] = wave
    power = np.square(padded).reshape(n_chunks, chunk)
    counts = np.full(n_chunks, chunk, dtype=np.float64)
    counts[-1] = wave.size - (n_chunks - 1) * chunk
    return 10.0 * np.log10(np.maximum(power.sum(axis=1) / counts, 1e-20))


def _loud_level_db(wave: np.ndarray, sr: int) -> float:
    """Level of the loud 10 ms chunks (95th percentile), the reference point for relative thresholds."""
    return float(np.percentile(_chunk_db(wave, sr * CHUNK_MS // 1000), 95))


def _silence_thresholds(loud_db: float) -> dict[str, float]:
    """Upstream's absolute thresholds, shifted down by as much as the clip is quieter than nominal."""
    shift = min(0.0, loud_db - NOMINAL_LOUD_DBFS)
    return {"long": -50.0 + shift, "short": -40.0 + shift, "trim": -42.0 + shift}


def _silent_ranges(wave: np.ndarray, sr: int, min_silence_ms: int, thresh_db: float) -> list[tuple[int, int]]:
    """Sample ranges where every ``min_silence_ms`` window (stepped by 10 ms) is at or below ``thresh_db``.

    The union of such windows, like pydub's ``detect_silence``.
    """
    window = sr * min_silence_ms // 1000
    step = sr * CHUNK_MS // 1000
    if wave.size < window:
        return []
    starts = np.arange(0, wave.size - window + 1, step)
    if starts[-1] != wave.size - window:
        starts = np.append(starts, wave.size - window)
    cumsum = np.concatenate([[0.0], np.cumsum(np.square(wave, dtype=np.float64))])
    mean_square = (cumsum[starts + window] - cumsum[starts]) / window
    silent = starts[mean_square <= 10.0 ** (thresh_db / 10.0)]
    if silent.size == 0:
        return []
    # A new range starts wherever a silent window does not overlap or touch the previous one.
    breaks = np.nonzero(np.diff(silent) > window)[0]
    first = np.concatenate([[0], breaks + 1])
    last = np.concatenate([breaks, [silent.size - 1]])
    return [(int(silent[a]), int(silent[b]) + window) for a, b in zip(first, last, strict=True)]


def _split_on_silence(
    wave: np.ndarray, sr: int, min_silence_ms: int, thresh_db: float, keep_ms: int
) -> list[tuple[int, int]]:
    """Sound segments, each padded with up to ``keep_ms`` of its neighbouring silences (pydub semantics:
    when two paddings would overlap, the silence between them is split in the middle, so nothing of a
    short silence is lost)."""
    silences = _silent_ranges(wave, sr, min_silence_ms, thresh_db)
    edges = [0] + [x for rng in silences for x in rng] + [wave.size]
    sounds = [(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True) if b > a]
    keep = sr * keep_ms // 1000
    padded = [[a - keep, b + keep] for a, b in sounds]
    for left, right in itertools.pairwise(padded):
        if right[0] < left[1]:
            middle = (left[1] + right[0]) // 2
            left[1] = right[0] = middle
    return [(max(a, 0), min(b, wave.size)) for a, b in padded]


def _accumulate(wave: np.ndarray, segments: list[tuple[int, int]], max_len: int) -> tuple[np.ndarray, bool]:
    """Concatenate segments in order; stop before one that would pass ``max_len`` once past half of it."""
    parts: list[np.ndarray] = []
    total = 0
    stopped = False
    for start, end in segments:
        if total > max_len // 2 and total + (end - start) > max_len:
            stopped = True
            break
        parts.append(wave[start:end])
        total += end - start
    if not parts:
        return wave[:0], stopped
    return np.concatenate(parts), stopped


def _clip_at_silences(
    wave: np.ndarray, sr: int, max_seconds: float, thresholds: dict[str, float]
) -> tuple[np.ndarray, bool]:
    max_len = int(max_seconds * sr)
    # Pass 1 always runs (as upstream): it also shortens silences longer than 2 s inside the clip.
    long_gaps = _split_on_silence(wave, sr, 1000, thresholds["long"], keep_ms=1000)
    clip, stopped = _accumulate(wave, long_gaps, max_len)
    if clip.size > max_len:
        short_gaps = _split_on_silence(wave, sr, 100, thresholds["short"], keep_ms=1000)
        clip, stopped = _accumulate(wave, short_gaps, max_len)
    if clip.size == 0:  # no sound segment at all (cannot happen after the silence check; be safe)
        clip = wave
    if clip.size > max_len:
        clip = clip[:max_len].copy()
        fade = min(clip.size, int(HARD_CUT_FADE_SECONDS * sr))
        clip[clip.size - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        stopped = True
    return clip, stopped


def _trim_edges(wave: np.ndarray, sr: int, thresh_db: float) -> np.ndarray:
    """Drop leading and trailing 10 ms chunks quieter than ``thresh_db`` (chunks counted from each end)."""
    chunk = sr * CHUNK_MS // 1000
    if wave.size == 0:
        return wave
    head = _chunk_db(wave, chunk) >= thresh_db
    if not head.any():
        return wave[:0]
    start = int(np.argmax(head)) * chunk
    rest = wave[start:]
    tail = _chunk_db(rest[::-1], chunk) >= thresh_db
    end = rest.size - int(np.argmax(tail)) * chunk
    return rest[:end]


# --------------------------------------------------------------------------------------------------
# Joining and encoding


def cross_fade_overlaps(lengths: list[int], sr: int, fade_seconds: float) -> list[int]:
    """Samples shared by each pair of consecutive non-empty pieces in :func:`cross_fade_concat`.

    ``n = min(fade, len(prev) - overlap already used at its head, len(next))``; the joined audio is
    ``sum(lengths) - sum(overlaps)`` samples. Planning uses it to predict output lengths exactly.
    """
    sizes = [n for n in lengths if n > 0]
    fade = max(0, int(fade_seconds * sr))
    overlaps: list[int] = []
    used_head = 0  # samples at the head of the last piece already blended with the piece before it
    for prev, nxt in itertools.pairwise(sizes):
        n = max(0, min(fade, prev - used_head, nxt))
        overlaps.append(n)
        used_head = n
    return overlaps


def cross_fade_concat(
    chunks: list[np.ndarray],
    sr: int,
    fade_seconds: float,
    curve: Literal["linear", "equal_power"] = "linear",
) -> np.ndarray:
    """Join chunks, overlapping consecutive ones by ``fade_seconds`` with a cross-fade.

    The tail of the previous chunk fades out while the head of the next fades in over the samples
    :func:`cross_fade_overlaps` gives, so the result is ``sum(len) - sum(overlaps)`` samples long.
    ``linear`` (upstream) keeps the sum of gains at 1, right for correlated signals; ``equal_power``
    keeps the sum of squared gains at 1, right for uncorrelated ones. ``fade_seconds <= 0``
    concatenates. Empty chunks are skipped.
    """
    pieces = [np.asarray(c, dtype=np.float32) for c in chunks if len(c) > 0]
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    overlaps = cross_fade_overlaps([p.size for p in pieces], sr, fade_seconds)
    out: list[np.ndarray] = [pieces[0]]
    for nxt, n in zip(pieces[1:], overlaps, strict=True):
        if n <= 0:
            out.append(nxt)
            continue
        prev = out[-1]
        t = np.linspace(0.0, 1.0, n, dtype=np.float64)
        if curve == "linear":
            fade_out, fade_in = 1.0 - t, t
        elif curve == "equal_power":
            fade_out, fade_in = np.cos(t * np.pi / 2), np.sin(t * np.pi / 2)
        else:
            raise ValueError(f"unknown cross-fade curve {curve!r}")
        blended = (prev[-n:] * fade_out + nxt[:n] * fade_in).astype(np.float32)
        out[-1] = prev[:-n]
        out.append(np.concatenate([blended, nxt[n:]]))
    return np.concatenate(out)


def join_with_pauses(
    chunks: list[np.ndarray],
    pauses_before: list[float],
    sr: int,
    fade_seconds: float,
    trailing_pause: float = 0.0,
) -> np.ndarray:
    """:func:`cross_fade_concat` with digital silence of ``pauses_before[i]`` seconds before chunk ``i``.

    Chunks on either side of a pause are not cross-faded into each other: the silence is exactly
    ``round(pause * sr)`` zero samples between the unfaded end of one and the start of the next.
    """
    out: list[np.ndarray] = []
    group: list[np.ndarray] = []
    for chunk, pause in zip(chunks, pauses_before, strict=True):
        samples = round(pause * sr)
        if samples > 0:
            out.append(cross_fade_concat(group, sr, fade_seconds))
            out.append(np.zeros(samples, dtype=np.float32))
            group = []
        group.append(chunk)
    out.append(cross_fade_concat(group, sr, fade_seconds))
    out.append(np.zeros(max(round(trailing_pause * sr), 0), dtype=np.float32))
    return np.concatenate(out).astype(np.float32, copy=False)


OPUS_SAMPLE_RATES = (8_000, 12_000, 16_000, 24_000, 48_000)


MP3_OPTIONS: dict[str, Any] = {"bitrate_mode": "CONSTANT", "compression_level": 0.5}
"""LAME settings of every MP3 f5vi writes, whole or streamed: constant 80 kbit/s for 24 kHz mono
(libsndfile's 0 = best quality .. 1 = smallest), so a stream and a file of the same audio match."""


def encode_audio(wave: np.ndarray, sr: int, fmt: str = "wav") -> bytes:
    """Encode mono float audio (clipped to [-1, 1]) as ``fmt`` (see :data:`f5vi.formats.FORMATS`).

    Opus only exists at 8/12/16/24/48 kHz; other rates are resampled to 48 kHz for it.
    Unknown or unavailable formats raise :class:`UnsupportedAudioFormatError`.
    """
    spec = writable_format(fmt)
    data = np.clip(np.asarray(wave, dtype=np.float32).reshape(-1), -1.0, 1.0)
    if spec.name == "opus" and sr not in OPUS_SAMPLE_RATES:
        data, sr = np.clip(resample(data, sr, 48_000), -1.0, 1.0), 48_000
    buffer = io.BytesIO()
    kwargs: dict[str, Any] = {"endian": "LITTLE"} if spec.sf_format == "RAW" else {}
    if spec.name == "mp3":
        kwargs.update(MP3_OPTIONS)
    sf.write(buffer, data, sr, format=spec.sf_format, subtype=spec.sf_subtype, **kwargs)
    return buffer.getvalue()
