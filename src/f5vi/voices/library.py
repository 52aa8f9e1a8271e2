"""The reference-voice library: read-only voice directories plus one directory for uploads.

Where voices live (see README, "Voices"):

- **read-only** directories: the voices that ship with the server (``F5VI_VOICES_DIR``, ``voices/`` in
  the repository and the image) and any the operator adds (``F5VI_READ_ONLY_VOICES_DIRS``). Their
  voices are listed and used like any other, but the API never writes there: deleting or
  overwriting one, or uploading to its id, is refused with ``403 voice_read_only``. A missing
  transcript of such a voice is transcribed on first use and kept in memory only.
- the **upload** directory (``F5VI_UPLOADED_VOICES_DIR``, default ``<data_dir>/voices``): where
  ``POST /voices`` stores voices, which can then be overwritten and deleted.

Resolution: an id is looked up in the read-only directories in their configured order, then in the
upload directory; the first hit wins. Because uploads can never take a read-only id, an uploaded voice
cannot shadow a shipped one; a file put there by hand under such an id is ignored (with a warning).

Uploads are stored as 24 kHz mono 16-bit PCM with at most ``max_reference_seconds`` of speech (see
:mod:`f5vi.voices.upload`). Writes are atomic and serialised by a lock within the process.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from f5vi.engine.asr import Transcriber
from f5vi.engine.audio import PreparedReference, load_audio, prepare_reference
from f5vi.engine.errors import InvalidReferenceError
from f5vi.voices.directory import Voice, VoiceDirectory, normalize_transcript
from f5vi.voices.errors import (
    InvalidVoiceNameError,
    InvalidVoiceUploadError,
    TranscriptionUnavailableError,
    VoiceExistsError,
    VoiceNotFoundError,
    VoiceReadOnlyError,
    VoiceUnreadableError,
)
from f5vi.voices.names import (
    AUDIO_SUFFIX,
    METADATA_SUFFIX,
    TRANSCRIPT_SUFFIX,
    VOICE_ID_RE,
    parse_voice_name,
    shorten,
    validate_voice_id,
)
from f5vi.voices.upload import UploadLimits, check_upload_bytes, prepare_upload

if TYPE_CHECKING:
    from f5vi.config import Settings

__all__ = [
    "VOICE_ID_RE",
    "Voice",
    "VoiceLibrary",
    "normalize_transcript",
    "parse_voice_name",
    "validate_voice_id",
]

logger = logging.getLogger(__name__)

MAX_TRANSCRIPT_CHARS = 2000
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class VoiceLibrary:
    """List, resolve, upload and delete reference voices.

    ``voices_dir`` is the writable directory (uploads); ``read_only_dirs`` are searched first and never
    written. The server builds it with :meth:`from_settings`.
    """

    def __init__(
        self,
        voices_dir: Path,
        transcriber: Transcriber | None,
        max_reference_seconds: float = 12.0,
        *,
        target_rms: float = 0.1,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        read_only_dirs: Sequence[Path] = (),
    ) -> None:
        self.voices_dir = Path(voices_dir)
        self.transcriber = transcriber
        self.max_reference_seconds = float(max_reference_seconds)
        self.target_rms = float(target_rms)
        self.max_upload_bytes = int(max_upload_bytes)
        self._uploads = VoiceDirectory(self.voices_dir, read_only=False)
        self._read_only = tuple(VoiceDirectory(Path(d), read_only=True) for d in read_only_dirs)
        for directory in self._read_only:
            if directory.root() == self._uploads.root():
                raise ValueError(
                    f"the upload directory {self.voices_dir} is also configured read-only; "
                    "set F5VI_UPLOADED_VOICES_DIR to a directory of its own"
                )
        self._lock = threading.RLock()
        self._memory_transcripts: dict[tuple[str, int, int], str] = {}
        """Transcripts of read-only voices without ``<id>.txt``, keyed by audio path, size and mtime."""

    @classmethod
    def from_settings(cls, settings: Settings, transcriber: Transcriber | None = None) -> VoiceLibrary:
        """The server's library: shipped + operator read-only directories, uploads in the data dir."""
        return cls(
            settings.uploaded_voices_path,
            transcriber,
            settings.max_reference_seconds,
            target_rms=settings.target_rms,
            max_upload_bytes=settings.max_upload_bytes,
            read_only_dirs=settings.read_only_voice_dirs,
        )

    @property
    def _directories(self) -> tuple[VoiceDirectory, ...]:
        """In resolution order."""
        return (*self._read_only, self._uploads)

    def _home(self, voice_id: str) -> VoiceDirectory | None:
        """The directory whose voice ``voice_id`` names (the first that has it)."""
        for directory in self._directories:
            if directory.has(voice_id):
                return directory
        return None

    def _read_only_home(self, voice_id: str) -> VoiceDirectory | None:
        return next((d for d in self._read_only if d.has(voice_id)), None)

    # -- reading ----------------------------------------------------------------------------------
    def list(self) -> list[Voice]:
        """All readable voices, sorted by id. Unreadable, escaping or shadowed entries are skipped with a
        warning."""
        voices: dict[str, Voice] = {}
        for directory in self._directories:
            for voice_id in directory.ids():
                if voice_id in voices:
                    logger.warning(
                        "voice %r in %s is ignored: %s has a voice of that id",
                        voice_id,
                        directory.path,
                        voices[voice_id].audio_path.parent,
                    )
                    continue
                try:
                    voices[voice_id] = self._load_from(directory, voice_id)
                except (InvalidVoiceNameError, VoiceUnreadableError, VoiceNotFoundError) as exc:
                    logger.warning("skipping voice %r: %s", voice_id, exc)
        return [voices[key] for key in sorted(voices)]

    def resolve(self, ref_name: str) -> Voice:
        """The voice named by ``ref_name`` (any accepted form; see :func:`parse_voice_name`)."""
        return self._load(parse_voice_name(ref_name))

    def get(self, voice_id: str) -> Voice:
        """The voice with exactly this id."""
        return self._load(validate_voice_id(voice_id))

    def exists(self, voice_id: str) -> bool:
        return self._home(validate_voice_id(voice_id)) is not None

    def _load(self, voice_id: str) -> Voice:
        directory = self._home(voice_id)
        if directory is None:
            raise VoiceNotFoundError(self.not_found_message(voice_id))
        return self._load_from(directory, voice_id)

    def ids(self) -> tuple[str, ...]:
        """Every voice id of the library, sorted (no file is read)."""
        return tuple(sorted({voice_id for d in self._directories for voice_id in d.ids()}))

    def not_found_message(self, voice_id: str) -> str:
        """``voice 'x' not found``, with the closest ids (a typo is the usual cause) and where to look."""
        close = difflib.get_close_matches(voice_id, self.ids(), n=3, cutoff=0.75)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return f"voice {voice_id!r} not found{hint} (the voices: GET /voices, or f5vi voices)"

    def default_voice_id(self, configured: str | None) -> str:
        """The voice a request that names none gets: ``F5VI_DEFAULT_VOICE`` (``configured``) if set,
        else the first voice in id order. Used by ``POST /normalize``, ``f5vi normalize`` and
        OpenAI's voice names alike."""
        if configured:
            return configured
        voices = self.list()  # readable ones only
        if not voices:
            raise VoiceNotFoundError(
                "no voice is installed: upload one with POST /voices (or put <id>.wav + <id>.txt in "
                "F5VI_VOICES_DIR), or name one with F5VI_DEFAULT_VOICE"
            )
        return voices[0].id

    def _load_from(self, directory: VoiceDirectory, voice_id: str) -> Voice:
        voice = directory.load(voice_id)
        if voice.transcript is None and directory.read_only:
            remembered = self._memory_transcripts.get(self._memory_key(voice))
            if remembered is not None:
                voice = dataclasses.replace(voice, transcript=remembered)
        return voice

    @staticmethod
    def _memory_key(voice: Voice) -> tuple[str, int, int]:
        stat = voice.audio_path.stat()
        return (str(voice.audio_path), stat.st_size, stat.st_mtime_ns)

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
        """Return ``voice`` with a transcript, transcribing it if it has none.

        The transcriber hears the clipped, trimmed reference that synthesis uses, not the whole file.
        The result is cached as ``<id>.txt`` for an uploaded voice, in memory for a read-only one.
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
            if current.read_only:
                self._memory_transcripts[self._memory_key(current)] = text
                logger.info(
                    "transcribed read-only voice %r (%d characters; kept in memory: add %s%s to keep it)",
                    voice.id,
                    len(text),
                    voice.id,
                    TRANSCRIPT_SUFFIX,
                )
            else:
                self._uploads.write_text(voice.id, TRANSCRIPT_SUFFIX, text)
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
        """Validate and store an uploaded reference clip as ``<id>.wav`` in the upload directory.

        ``transcript`` must be exactly what is said. An upload longer than ``max_reference_seconds`` is
        stored as synthesis would cut it (at a pause, long silences shortened). If speech had to be cut,
        a user transcript can no longer be trusted to match and the upload is refused; if only silence
        went, the transcript still holds. Without a transcript the stored audio is transcribed. The id
        of a read-only voice is refused (:class:`VoiceReadOnlyError`), with or without ``overwrite``.
        """
        text = self.check_upload(voice_id, data, transcript, filename_hint, overwrite=overwrite)
        prepared = prepare_upload(data, text, _upload_label(filename_hint), self._limits, self.transcriber)
        metadata = {
            "source": "upload",
            "original_filename": filename_hint[:200] if filename_hint else None,
            "original_seconds": round(prepared.original_seconds, 3),
            "clipped": bool(prepared.clipped),
            "transcript_source": prepared.transcript_source,
            "asr_model": self.transcriber.model_id
            if prepared.transcript_source == "asr" and self.transcriber
            else None,
        }
        with self._lock:
            self._refuse_taken(voice_id, overwrite)  # again: it may have been added meanwhile
            # Transcript and metadata first, audio last: the .wav appearing is what makes the voice exist.
            self._uploads.write_text(voice_id, TRANSCRIPT_SUFFIX, prepared.transcript)
            self._uploads.write_bytes(
                voice_id,
                METADATA_SUFFIX,
                (json.dumps(metadata, ensure_ascii=False, indent=2) + "\n").encode("utf-8"),
            )
            self._uploads.write_bytes(voice_id, AUDIO_SUFFIX, prepared.wav_bytes)
            logger.info(
                "stored voice %r: %.2f s (from %.2f s), transcript from %s",
                voice_id,
                prepared.stored_seconds,
                prepared.original_seconds,
                prepared.transcript_source,
            )
            return self._load_from(self._uploads, voice_id)

    def check_upload(
        self,
        voice_id: str,
        data: bytes,
        transcript: str | None = None,
        filename_hint: str | None = None,
        *,
        overwrite: bool = False,
    ) -> str:
        """What :meth:`upload` refuses without decoding the audio (id, read-only, exists, transcript
        length, size, container): the API runs it before an upload waits for the engine. Returns the
        normalised transcript ("" for none)."""
        voice_id = validate_voice_id(voice_id)
        text = normalize_transcript(transcript) if transcript is not None else ""
        if len(text) > MAX_TRANSCRIPT_CHARS:
            raise InvalidVoiceUploadError(
                f"transcript is too long ({len(text)} characters, at most {MAX_TRANSCRIPT_CHARS})"
            )
        self._refuse_taken(voice_id, overwrite)
        check_upload_bytes(data, _upload_label(filename_hint), self._limits)
        return text

    @property
    def _limits(self) -> UploadLimits:
        return UploadLimits(self.max_upload_bytes, self.max_reference_seconds, self.target_rms)

    def delete(self, voice_id: str) -> None:
        """Remove an uploaded voice (audio, transcript, metadata).

        Unknown id: :class:`VoiceNotFoundError`; a read-only voice: :class:`VoiceReadOnlyError`.
        """
        voice_id = validate_voice_id(voice_id)
        with self._lock:
            self._refuse_read_only(voice_id)
            if not self._uploads.has(voice_id):
                raise VoiceNotFoundError(f"voice {voice_id!r} not found")
            self._uploads.remove(voice_id)
            logger.info("deleted voice %r", voice_id)

    def _refuse_taken(self, voice_id: str, overwrite: bool) -> None:
        """An upload may not take a read-only id, nor an uploaded one unless it overwrites."""
        self._refuse_read_only(voice_id)
        if not overwrite and self._uploads.has(voice_id):
            raise VoiceExistsError(f"voice {voice_id!r} already exists")

    def _refuse_read_only(self, voice_id: str) -> None:
        if self._read_only_home(voice_id) is not None:
            raise VoiceReadOnlyError(
                f"voice {voice_id!r} ships with this server and is read-only: it cannot be overwritten or "
                "deleted through the API; upload your voice under another id"
            )


def _upload_label(filename_hint: str | None) -> str:
    """How messages name an upload: its file name, shortened."""
    return shorten(filename_hint or "the upload", 60)
