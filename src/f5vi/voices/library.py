"""The reference-voice library: ``<voices_dir>/<id>.wav`` + optional ``<id>.txt`` and ``<id>.json``.

- ``<id>.wav``  the reference clip (uploads are stored as 24 kHz mono 16-bit PCM, at most
  ``max_reference_seconds`` of speech);
- ``<id>.txt``  the exact transcript of what is said in the clip *as synthesis uses it* (UTF-8, one
  line). Missing: :meth:`VoiceLibrary.ensure_transcript` writes it with the transcriber;
- ``<id>.json`` optional metadata (``synthetic``, ``description``, ``source``, upload provenance).

Security: a voice is named by an id from a strict ASCII allow-list, never by a path. Every path is
built inside the voices directory and checked with :meth:`Path.is_relative_to` after resolving
symlinks, so ``../x``, absolute paths, encoded separators and symlinks pointing out are refused.

Transcript/audio consistency: synthesis (``f5vi.engine.reference``) runs ``load_audio`` +
``prepare_reference`` on the stored file, which clips long clips at a silence. A transcript must
describe that clipped audio, so this module transcribes exactly that audio, stores uploads longer than
the limit already clipped, and refuses a user transcript for an upload that had to be clipped.

Writes are atomic (temporary file in the same directory + ``os.replace``) and serialised by a lock
within the process; a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from f5vi.engine.errors import InvalidReferenceError
from f5vi.engine.types import SAMPLE_RATE, ReferenceVoice
from f5vi.voices.errors import (
    InvalidVoiceNameError,
    InvalidVoiceUploadError,
    TranscriptionUnavailableError,
    VoiceExistsError,
    VoiceNotFoundError,
    VoiceUnreadableError,
    VoiceUploadTooLargeError,
)

logger = logging.getLogger(__name__)

VOICE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""Allowed voice ids: ASCII letters, digits, ``.``, ``_``, ``-``; first a letter or digit; <= 64 chars."""
MAX_REF_NAME_CHARS = 256
"""Longest ``ref_name`` looked at (prefix + id + suffix); anything longer is refused unparsed."""
AUDIO_SUFFIX = ".wav"
TRANSCRIPT_SUFFIX = ".txt"
METADATA_SUFFIX = ".json"
_RESERVED_ID_SUFFIXES = (AUDIO_SUFFIX, TRANSCRIPT_SUFFIX, METADATA_SUFFIX, ".tmp")
_NAME_PREFIXES = ("voice:",)
_DIR_PREFIXES = ("sample/", "voices/")
"""The seed's ``ref_name`` forms: ``3_Nu``, ``3_Nu.wav``, ``sample/3_Nu.wav``; plus ours."""

UPLOAD_FORMATS = frozenset({"WAV", "WAVEX", "RF64", "W64", "FLAC", "MP3", "OGG"})
"""Containers accepted for upload (as libsndfile names them)."""
MAX_UPLOAD_SECONDS = 600.0
"""Longest upload decoded at all (the clip kept is at most ``max_reference_seconds``)."""
MAX_TRANSCRIPT_CHARS = 2000
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Voice:
    """One reference voice as stored on disk."""

    id: str
    audio_path: Path
    transcript: str | None
    duration_seconds: float
    sample_rate: int
    channels: int
    size_bytes: int
    synthetic: bool = False
    description: str | None = None

    @property
    def has_transcript(self) -> bool:
        return self.transcript is not None

    def to_reference(self) -> ReferenceVoice:
        """The engine's view of this voice (``transcript`` None means: not transcribed yet)."""
        return ReferenceVoice(audio_path=self.audio_path, transcript=self.transcript, voice_id=self.id)


# --------------------------------------------------------------------------------------------------
# Names


def validate_voice_id(voice_id: object) -> str:
    """Return ``voice_id`` if it is a valid id to store a voice under, else raise InvalidVoiceNameError."""
    if not isinstance(voice_id, str):
        raise InvalidVoiceNameError(f"voice id must be a string, got {type(voice_id).__name__}")
    if not VOICE_ID_RE.fullmatch(voice_id):
        raise InvalidVoiceNameError(
            f"invalid voice id {_shorten(voice_id)!r}: use 1-64 ASCII letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if ".." in voice_id:
        raise InvalidVoiceNameError(f"invalid voice id {voice_id!r}: '..' is not allowed")
    if voice_id.lower().endswith(_RESERVED_ID_SUFFIXES):
        raise InvalidVoiceNameError(
            f"invalid voice id {voice_id!r}: must not end with {', '.join(_RESERVED_ID_SUFFIXES)}"
        )
    return voice_id


def parse_voice_name(ref_name: object) -> str:
    """Map a ``ref_name`` in any accepted form to a voice id.

    Accepted: ``3_Nu``, ``3_Nu.wav``, ``sample/3_Nu.wav``, ``voices/3_Nu.wav``, ``voice:3_Nu``. Nothing
    is URL-decoded or path-normalised: any other separator, ``..``, ``%``, NUL or control character
    makes the name invalid.
    """
    if not isinstance(ref_name, str):
        raise InvalidVoiceNameError(f"voice name must be a string, got {type(ref_name).__name__}")
    if len(ref_name) > MAX_REF_NAME_CHARS:
        raise InvalidVoiceNameError(f"voice name is too long ({len(ref_name)} characters)")
    name = ref_name.strip()
    if not name:
        raise InvalidVoiceNameError("voice name is empty")
    for prefix in _NAME_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    for prefix in _DIR_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    if name.lower().endswith(AUDIO_SUFFIX):
        name = name[: -len(AUDIO_SUFFIX)]
    try:
        return validate_voice_id(name)
    except InvalidVoiceNameError:
        raise InvalidVoiceNameError(
            f"invalid voice name {_shorten(ref_name)!r}: expected a voice id such as 'vi_north_male' "
            "(optionally 'vi_north_male.wav', 'sample/vi_north_male.wav' or 'voice:vi_north_male')"
        ) from None


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------------------------------
# Text files


def normalize_transcript(text: str) -> str:
    """NFC, every run of whitespace (newlines included) to one space, stripped."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _read_transcript(path: Path) -> str | None:
    """The transcript in ``path``; None when the file is missing or blank."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise VoiceUnreadableError(f"cannot read transcript {path.name}: {exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise VoiceUnreadableError(f"transcript {path.name} is not valid UTF-8: {exc}") from exc
    return normalize_transcript(text) or None


def _read_metadata(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable voice metadata %s: %s", path.name, exc)
        return {}
    if not isinstance(data, dict):
        logger.warning("ignoring voice metadata %s: not a JSON object", path.name)
        return {}
    return data


# --------------------------------------------------------------------------------------------------
# The library


class VoiceLibrary:
    """List, resolve, upload and delete reference voices in one directory."""

    def __init__(
        self,
        voices_dir: Path,
        transcriber: Transcriber | None,
        max_reference_seconds: float = 12.0,
        *,
        target_rms: float = 0.1,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    ) -> None:
        self.voices_dir = Path(voices_dir)
        self.transcriber = transcriber
        self.max_reference_seconds = float(max_reference_seconds)
        self.target_rms = float(target_rms)
        self.max_upload_bytes = int(max_upload_bytes)
        self._lock = threading.RLock()

    # -- paths ------------------------------------------------------------------------------------
    def _root(self) -> Path:
        return self.voices_dir.resolve()

    def _path(self, voice_id: str, suffix: str) -> Path:
        """``<voices_dir>/<id><suffix>``, refused if it (or the symlink it is) leads out of the directory."""
        root = self._root()
        path = root / f"{voice_id}{suffix}"
        if path.parent != root:  # cannot happen for a validated id; keep the invariant explicit
            raise InvalidVoiceNameError(f"invalid voice id {voice_id!r}")
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise InvalidVoiceNameError(f"voice {voice_id!r} points outside the voices directory")
        return path

    # -- reading ----------------------------------------------------------------------------------
    def list(self) -> list[Voice]:
        """All readable voices, sorted by id. Unreadable or escaping entries are skipped with a warning."""
        root = self._root()
        if not root.is_dir():
            return []
        voices: list[Voice] = []
        for voice_id in self._ids(root):
            try:
                voices.append(self._load(voice_id))
            except (InvalidVoiceNameError, VoiceUnreadableError, VoiceNotFoundError) as exc:
                logger.warning("skipping voice %r: %s", voice_id, exc)
        return voices

    def _ids(self, root: Path) -> Iterator[str]:
        for entry in sorted(root.iterdir()):
            name = entry.name
            if not name.endswith(AUDIO_SUFFIX) or name.startswith("."):
                continue
            voice_id = name[: -len(AUDIO_SUFFIX)]
            try:
                yield validate_voice_id(voice_id)
            except InvalidVoiceNameError:
                logger.warning("ignoring %s in the voices directory: not a valid voice id", name)

    def resolve(self, ref_name: str) -> Voice:
        """The voice named by ``ref_name`` (any accepted form; see :func:`parse_voice_name`)."""
        return self._load(parse_voice_name(ref_name))

    def get(self, voice_id: str) -> Voice:
        """The voice with exactly this id."""
        return self._load(validate_voice_id(voice_id))

    def exists(self, voice_id: str) -> bool:
        path = self._path(validate_voice_id(voice_id), AUDIO_SUFFIX)
        return path.is_file()

    def _load(self, voice_id: str) -> Voice:
        audio_path = self._path(voice_id, AUDIO_SUFFIX)
        if not audio_path.is_file():
            raise VoiceNotFoundError(f"voice {voice_id!r} not found")
        try:
            info = sf.info(str(audio_path))
            size = audio_path.stat().st_size
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise VoiceUnreadableError(f"voice {voice_id!r}: cannot read {audio_path.name}: {exc}") from exc
        try:
            transcript_path = self._path(voice_id, TRANSCRIPT_SUFFIX)
            metadata_path = self._path(voice_id, METADATA_SUFFIX)
        except InvalidVoiceNameError as exc:
            raise VoiceUnreadableError(str(exc)) from exc
        metadata = _read_metadata(metadata_path)
        description = metadata.get("description")
        return Voice(
            id=voice_id,
            audio_path=audio_path,
            transcript=_read_transcript(transcript_path),
            duration_seconds=float(info.frames) / float(info.samplerate),
            sample_rate=int(info.samplerate),
            channels=int(info.channels),
            size_bytes=int(size),
            synthetic=bool(metadata.get("synthetic", False)),
            description=description if isinstance(description, str) else None,
        )

    # -- transcripts ------------------------------------------------------------------------------
    def prepare(self, voice: Voice) -> PreparedReference:
        """The reference exactly as synthesis prepares it (``load_audio`` + ``prepare_reference``)."""
        try:
            wave, sample_rate = load_audio(voice.audio_path)
        except InvalidReferenceError as exc:
            raise VoiceUnreadableError(f"voice {voice.id!r}: {exc.message}") from exc
        return prepare_reference(
            wave, sample_rate, max_seconds=self.max_reference_seconds, target_rms=self.target_rms
        )

    def ensure_transcript(self, voice: Voice) -> Voice:
        """Return ``voice`` with a transcript, transcribing and caching ``<id>.txt`` if it has none.

        The transcriber hears the clipped, trimmed reference that synthesis uses, not the whole file.
        Raises :class:`TranscriptionUnavailableError` without a transcriber, ``InvalidReferenceError``
        when the audio is unusable or no speech is recognised, ``ModelLoadError`` when ASR cannot load.
        """
        if voice.transcript is not None:
            return voice
        with self._lock:
            current = self.get(voice.id)  # re-read: another caller may have written it meanwhile
            if current.transcript is not None:
                return current
            if self.transcriber is None:
                raise TranscriptionUnavailableError(
                    f"voice {voice.id!r} has no transcript and automatic transcription is not configured; "
                    f"add {voice.id}{TRANSCRIPT_SUFFIX} next to the audio"
                )
            prepared = self.prepare(current)
            text = normalize_transcript(self.transcriber.transcribe(prepared.wave_24k, prepared.sample_rate))
            if not text:
                raise InvalidReferenceError(f"no speech was recognised in voice {voice.id!r}")
            self._write_text(self._path(voice.id, TRANSCRIPT_SUFFIX), text)
            logger.info("wrote transcript for voice %r (%d characters)", voice.id, len(text))
            return dataclasses.replace(current, transcript=text)

    # -- writing ----------------------------------------------------------------------------------
    def upload(
        self,
        voice_id: str,
        data: bytes,
        transcript: str | None = None,
        filename_hint: str | None = None,
        *,
        overwrite: bool = False,
    ) -> Voice:
        """Validate and store an uploaded reference clip as ``<id>.wav`` (24 kHz mono 16-bit).

        ``transcript`` must be exactly what is said. An upload longer than ``max_reference_seconds`` is
        stored as synthesis would cut it (at a pause, long silences shortened). If speech had to be cut,
        a user transcript can no longer be trusted to match and the upload is refused; if only silence
        went, the transcript still holds. Without a transcript the stored audio is transcribed.
        """
        voice_id = validate_voice_id(voice_id)
        text = normalize_transcript(transcript) if transcript is not None else ""
        if len(text) > MAX_TRANSCRIPT_CHARS:
            raise InvalidVoiceUploadError(
                f"transcript is too long ({len(text)} characters, at most {MAX_TRANSCRIPT_CHARS})"
            )
        if not overwrite and self.exists(voice_id):
            raise VoiceExistsError(f"voice {voice_id!r} already exists")
        label = _shorten(filename_hint or "the upload", 60)

        wave, sample_rate = self._decode_upload(data, label)
        first = self._prepare_upload(wave, sample_rate, label)
        too_long = first.original_seconds > self.max_reference_seconds
        if too_long:
            # ``clipped``: speech was dropped (not just long pauses shortened); the words then differ.
            if text and first.clipped:
                raise InvalidVoiceUploadError(
                    f"{label} is {first.original_seconds:.1f} s long; references longer than "
                    f"{self.max_reference_seconds:g} s are clipped at a pause, so the transcript you sent "
                    f"would not match the audio kept. Upload a clip of at most "
                    f"{self.max_reference_seconds:g} s with its transcript, or omit the transcript to have "
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
        used = self._prepare_upload(*load_audio(wav_bytes), label)
        if used.clipped and text:  # defensive: the stored clip is within the limit
            raise InvalidVoiceUploadError(
                f"{label} would be clipped again at synthesis time; upload a shorter clip"
            )
        source = "user"
        if not text:
            if self.transcriber is None:
                raise TranscriptionUnavailableError(
                    "a transcript is required: automatic transcription is not configured on this server"
                )
            try:
                text = normalize_transcript(self.transcriber.transcribe(used.wave_24k, used.sample_rate))
            except InvalidReferenceError as exc:
                raise InvalidVoiceUploadError(f"{label}: {exc.message}") from exc
            if not text:
                raise InvalidVoiceUploadError(f"{label}: no speech was recognised; send the transcript")
            source = "asr"

        metadata = {
            "source": "upload",
            "original_filename": filename_hint[:200] if filename_hint else None,
            "original_seconds": round(first.original_seconds, 3),
            "clipped": bool(first.clipped),
            "transcript_source": source,
            "asr_model": self.transcriber.model_id if source == "asr" and self.transcriber else None,
        }
        with self._lock:
            audio_path = self._path(voice_id, AUDIO_SUFFIX)
            if not overwrite and audio_path.exists():
                raise VoiceExistsError(f"voice {voice_id!r} already exists")
            # Transcript and metadata first, audio last: the .wav appearing is what makes the voice exist.
            self._write_text(self._path(voice_id, TRANSCRIPT_SUFFIX), text)
            self._write_bytes(
                self._path(voice_id, METADATA_SUFFIX),
                (json.dumps(metadata, ensure_ascii=False, indent=2) + "\n").encode("utf-8"),
            )
            self._write_bytes(audio_path, wav_bytes)
            logger.info(
                "stored voice %r: %.2f s (from %.2f s), transcript from %s",
                voice_id,
                stored.size / SAMPLE_RATE,
                first.original_seconds,
                source,
            )
            return self._load(voice_id)

    def delete(self, voice_id: str) -> None:
        """Remove a voice (audio, transcript, metadata). Unknown id: :class:`VoiceNotFoundError`."""
        voice_id = validate_voice_id(voice_id)
        with self._lock:
            audio_path = self._path(voice_id, AUDIO_SUFFIX)
            if not audio_path.is_file():
                raise VoiceNotFoundError(f"voice {voice_id!r} not found")
            # Audio first: once it is gone the voice no longer exists, whatever happens next.
            for suffix in (AUDIO_SUFFIX, TRANSCRIPT_SUFFIX, METADATA_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    self._path(voice_id, suffix).unlink()
            logger.info("deleted voice %r", voice_id)

    # -- upload helpers ---------------------------------------------------------------------------
    def _decode_upload(self, data: bytes, label: str) -> tuple[np.ndarray, int]:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidVoiceUploadError(f"{label}: upload must be bytes")
        if len(data) > self.max_upload_bytes:
            raise VoiceUploadTooLargeError(
                f"{label} is {len(data)} bytes; the limit is {self.max_upload_bytes} bytes"
            )
        if len(data) == 0:
            raise InvalidVoiceUploadError(f"{label} is empty")
        raw = bytes(data)
        try:
            info = sf.info(io.BytesIO(raw))
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
                f"are refused (a reference needs at most {self.max_reference_seconds:g} s of speech)"
            )
        try:
            return load_audio(raw)
        except InvalidReferenceError as exc:
            raise InvalidVoiceUploadError(f"{label}: {exc.message}") from exc

    def _prepare_upload(self, wave: np.ndarray, sample_rate: int, label: str) -> PreparedReference:
        try:
            return prepare_reference(
                wave, sample_rate, max_seconds=self.max_reference_seconds, target_rms=self.target_rms
            )
        except InvalidReferenceError as exc:
            raise InvalidVoiceUploadError(f"{label}: {exc.message}") from exc

    # -- atomic file writes -----------------------------------------------------------------------
    def _write_text(self, path: Path, text: str) -> None:
        self._write_bytes(path, (text + "\n").encode("utf-8"))

    def _write_bytes(self, path: Path, payload: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, path)  # replaces a symlink itself, never the file it points to
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
