"""Turn uploaded bytes into the clip a voice stores (24 kHz mono 16-bit WAV) and its transcript.

Transcript/audio consistency: synthesis (``f5vi.engine.reference``) runs ``load_audio`` +
``prepare_reference`` on the stored file, which clips long clips at a silence. A transcript must
describe that clipped audio, so an upload longer than the limit is stored already clipped, a user
transcript for an upload that had to be clipped is refused, and ASR hears exactly the stored clip.

Every step is bounded in time and memory by the upload's size (the resampler's cost does not depend
on the sample rate's factors, see :mod:`f5vi.engine.resample`). A machine short of memory anyway
raises :class:`~f5vi.engine.errors.InsufficientMemoryError` (HTTP 503), never a bare MemoryError.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from f5vi.engine.asr import Transcriber
from f5vi.engine.audio import (
    TAIL_SILENCE_SECONDS,
    PreparedReference,
    encode_audio,
    load_audio,
    prepare_reference,
    resample,
)
from f5vi.engine.errors import InvalidReferenceError, memory_guard
from f5vi.engine.types import SAMPLE_RATE
from f5vi.voices.directory import normalize_transcript
from f5vi.voices.errors import (
    InvalidVoiceUploadError,
    TranscriptionUnavailableError,
    VoiceUploadTooLargeError,
)

UPLOAD_FORMATS = frozenset({"WAV", "WAVEX", "RF64", "W64", "FLAC", "MP3", "OGG"})
"""Containers accepted for upload (as libsndfile names them)."""
MAX_UPLOAD_SECONDS = 600.0
"""Longest upload decoded at all (the clip kept is at most ``max_reference_seconds``)."""


@dataclass(frozen=True)
class UploadLimits:
    max_upload_bytes: int
    max_reference_seconds: float
    target_rms: float


@dataclass(frozen=True)
class PreparedUpload:
    """What to store: the WAV bytes, the transcript and where it came from (``user`` or ``asr``)."""

    wav_bytes: bytes
    stored_seconds: float
    original_seconds: float
    clipped: bool
    transcript: str
    transcript_source: str


def prepare_upload(
    data: bytes, transcript: str, label: str, limits: UploadLimits, transcriber: Transcriber | None
) -> PreparedUpload:
    """Decode, clip and (without ``transcript``) transcribe an upload; raises the library's errors.

    ``data`` has passed :func:`check_upload_bytes` (the library runs it in ``check_upload`` first).
    """
    with memory_guard("prepare the uploaded voice"):
        return _prepare(data, transcript, label, limits, transcriber)


def _prepare(
    data: bytes, text: str, label: str, limits: UploadLimits, transcriber: Transcriber | None
) -> PreparedUpload:
    wave, sample_rate = _decode(data, label)
    first = _prepare_reference(wave, sample_rate, label, limits)
    if first.original_seconds > limits.max_reference_seconds:
        # ``clipped``: speech was dropped (not just long pauses shortened); the words then differ.
        if text and first.clipped:
            raise InvalidVoiceUploadError(
                f"{label} is {first.original_seconds:.1f} s long; references longer than "
                f"{limits.max_reference_seconds:g} s are clipped at a pause, so the transcript you sent "
                f"would not match the audio kept. Upload a clip of at most "
                f"{limits.max_reference_seconds:g} s with its transcript, or omit the transcript to have "
                "the kept audio transcribed automatically.",
                code="transcript_for_clipped_audio",
            )
        # Keep the clip synthesis would use, at its original loudness and without the 50 ms tail
        # prepare_reference appends (so preparing the stored file again clips nothing more).
        tail = round(TAIL_SILENCE_SECONDS * SAMPLE_RATE)
        stored = first.wave_24k[: max(first.wave_24k.size - tail, 0)] / first.rms_scale
    else:
        stored = resample(wave, sample_rate, SAMPLE_RATE)
    wav_bytes = encode_audio(stored, SAMPLE_RATE, "wav")

    # What synthesis will hear: the stored bytes, loaded and prepared as the engine does.
    used = _prepare_reference(*load_audio(wav_bytes), label, limits)
    if used.clipped and text:  # defensive: the stored clip is within the limit
        raise InvalidVoiceUploadError(
            f"{label} would be clipped again at synthesis time; upload a shorter clip"
        )
    source = "user"
    if not text:
        if transcriber is None:
            raise TranscriptionUnavailableError(
                "a transcript is required: automatic transcription is not configured on this server"
            )
        try:
            text = normalize_transcript(transcriber.transcribe(used.wave_24k, used.sample_rate))
        except InvalidReferenceError as exc:
            raise InvalidVoiceUploadError(f"{label}: {exc.message}") from exc
        if not text:
            raise InvalidVoiceUploadError(f"{label}: no speech was recognised; send the transcript")
        source = "asr"
    return PreparedUpload(
        wav_bytes=wav_bytes,
        stored_seconds=stored.size / SAMPLE_RATE,
        original_seconds=first.original_seconds,
        clipped=first.clipped,
        transcript=text,
        transcript_source=source,
    )


def _decode(data: bytes, label: str) -> tuple[np.ndarray, int]:
    try:
        return load_audio(bytes(data))
    except InvalidReferenceError as exc:
        raise InvalidVoiceUploadError(f"{label}: {exc.message}") from exc


def check_upload_bytes(data: bytes, label: str, limits: UploadLimits) -> None:
    """The checks that need no decoding (size, container, duration from the header): cheap enough to
    run before an upload waits for the engine's turn."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidVoiceUploadError(f"{label}: upload must be bytes")
    if len(data) > limits.max_upload_bytes:
        raise VoiceUploadTooLargeError(
            f"{label} is {len(data)} bytes; the limit is {limits.max_upload_bytes} bytes"
        )
    if len(data) == 0:
        raise InvalidVoiceUploadError(f"{label} is empty")
    try:
        info = sf.info(io.BytesIO(bytes(data)))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError, EOFError):
        raise InvalidVoiceUploadError(
            f"{label} is not a readable audio file (send WAV, FLAC, MP3 or OGG)"
        ) from None
    if info.format not in UPLOAD_FORMATS:
        raise InvalidVoiceUploadError(
            f"{label}: unsupported audio format {info.format}; send WAV, FLAC, MP3 or OGG"
        )
    if info.samplerate <= 0 or info.frames <= 0:
        raise InvalidVoiceUploadError(f"{label} contains no audio")
    if info.frames / info.samplerate > MAX_UPLOAD_SECONDS:
        raise InvalidVoiceUploadError(
            f"{label} is {info.frames / info.samplerate:.0f} s; uploads over {MAX_UPLOAD_SECONDS:g} s "
            f"are refused (a reference needs at most {limits.max_reference_seconds:g} s of speech)"
        )


def _prepare_reference(
    wave: np.ndarray, sample_rate: int, label: str, limits: UploadLimits
) -> PreparedReference:
    try:
        return prepare_reference(
            wave, sample_rate, max_seconds=limits.max_reference_seconds, target_rms=limits.target_rms
        )
    except InvalidReferenceError as exc:
        raise InvalidVoiceUploadError(f"{label}: {exc.message}") from exc
