"""One directory of voices on disk: ``<id>.wav`` + optional ``<id>.txt`` and ``<id>.json``.

- ``<id>.wav``  the reference clip;
- ``<id>.txt``  the exact transcript of what is said in the clip *as synthesis uses it* (UTF-8, one line);
- ``<id>.json`` optional metadata (``synthetic``, ``description``, ``source``, upload provenance).

Every path is built inside the directory from a validated id and checked with
:meth:`Path.is_relative_to` after resolving symlinks, so ``../x``, absolute paths, encoded separators
and symlinks pointing out are refused. Writes are atomic (temporary file in the same directory +
``os.replace``): a reader never sees half a file. A read-only directory refuses every write, whoever
asks; :class:`~f5vi.voices.library.VoiceLibrary` decides which directories those are.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf

from f5vi.engine.types import ReferenceVoice
from f5vi.errors import InsufficientStorageError, is_out_of_space
from f5vi.voices.errors import (
    InvalidVoiceNameError,
    VoiceNotFoundError,
    VoiceReadOnlyError,
    VoiceUnreadableError,
)
from f5vi.voices.names import (
    AUDIO_SUFFIX,
    METADATA_SUFFIX,
    TRANSCRIPT_SUFFIX,
    validate_voice_id,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Voice:
    """One reference voice as stored on disk. ``read_only``: it cannot be changed through the API."""

    id: str
    audio_path: Path
    transcript: str | None
    duration_seconds: float
    sample_rate: int
    channels: int
    size_bytes: int
    synthetic: bool = False
    description: str | None = None
    read_only: bool = False

    @property
    def has_transcript(self) -> bool:
        return self.transcript is not None

    def to_reference(self) -> ReferenceVoice:
        """The engine's view of this voice (``transcript`` None means: not transcribed yet)."""
        return ReferenceVoice(audio_path=self.audio_path, transcript=self.transcript, voice_id=self.id)


def normalize_transcript(text: str) -> str:
    """NFC, every run of whitespace (newlines included) to one space, stripped."""
    return " ".join(unicodedata.normalize("NFC", text).split())


class VoiceDirectory:
    """Safe paths, listing, loading and atomic writes in one voices directory."""

    def __init__(self, path: Path, *, read_only: bool) -> None:
        self.path = Path(path)
        self.read_only = read_only

    def root(self) -> Path:
        return self.path.resolve()

    def file(self, voice_id: str, suffix: str) -> Path:
        """``<dir>/<id><suffix>``, refused if it (or the symlink it is) leads out of the directory."""
        root = self.root()
        path = root / f"{voice_id}{suffix}"
        if path.parent != root:  # cannot happen for a validated id; keep the invariant explicit
            raise InvalidVoiceNameError(f"invalid voice id {voice_id!r}")
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise InvalidVoiceNameError(f"voice {voice_id!r} points outside the voices directory")
        return path

    # -- reading ----------------------------------------------------------------------------------
    def ids(self) -> Iterator[str]:
        """Valid ids with an ``<id>.wav`` here, sorted; nothing when the directory does not exist."""
        root = self.root()
        if not root.is_dir():
            return
        for entry in sorted(root.iterdir()):
            name = entry.name
            if not name.endswith(AUDIO_SUFFIX) or name.startswith("."):
                continue
            voice_id = name[: -len(AUDIO_SUFFIX)]
            try:
                yield validate_voice_id(voice_id)
            except InvalidVoiceNameError:
                logger.warning("ignoring %s in %s: not a valid voice id", name, self.path.name)

    def has(self, voice_id: str) -> bool:
        return self.file(voice_id, AUDIO_SUFFIX).is_file()

    def load(self, voice_id: str, *, transcript: str | None = None) -> Voice:
        """The voice ``voice_id`` stored here; ``transcript`` stands in for a missing ``<id>.txt``."""
        audio_path = self.file(voice_id, AUDIO_SUFFIX)
        if not audio_path.is_file():
            raise VoiceNotFoundError(f"voice {voice_id!r} not found")
        try:
            info = sf.info(str(audio_path))
            size = audio_path.stat().st_size
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise VoiceUnreadableError(f"voice {voice_id!r}: cannot read {audio_path.name}: {exc}") from exc
        try:
            transcript_path = self.file(voice_id, TRANSCRIPT_SUFFIX)
            metadata_path = self.file(voice_id, METADATA_SUFFIX)
        except InvalidVoiceNameError as exc:
            raise VoiceUnreadableError(str(exc)) from exc
        metadata = _read_metadata(metadata_path)
        description = metadata.get("description")
        stored = _read_transcript(transcript_path)
        return Voice(
            id=voice_id,
            audio_path=audio_path,
            transcript=stored if stored is not None else transcript,
            duration_seconds=float(info.frames) / float(info.samplerate),
            sample_rate=int(info.samplerate),
            channels=int(info.channels),
            size_bytes=int(size),
            synthetic=bool(metadata.get("synthetic", False)),
            description=description if isinstance(description, str) else None,
            read_only=self.read_only,
        )

    # -- writing ----------------------------------------------------------------------------------
    def write_text(self, voice_id: str, suffix: str, text: str) -> None:
        self.write_bytes(voice_id, suffix, (text + "\n").encode("utf-8"))

    def write_bytes(self, voice_id: str, suffix: str, payload: bytes) -> None:
        """Atomically replace ``<id><suffix>`` (a symlink is replaced itself, never its target)."""
        self._check_writable(voice_id)
        path = self.file(voice_id, suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, path)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            if isinstance(exc, Exception) and is_out_of_space(exc):
                raise InsufficientStorageError(
                    "no space left to store the voice (the disk of F5VI_UPLOADED_VOICES_DIR, by default "
                    "F5VI_DATA_DIR/voices, is full); free space and retry"
                ) from exc
            raise

    def remove(self, voice_id: str) -> None:
        """Remove audio (first: once it is gone the voice no longer exists), transcript and metadata."""
        self._check_writable(voice_id)
        for suffix in (AUDIO_SUFFIX, TRANSCRIPT_SUFFIX, METADATA_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                self.file(voice_id, suffix).unlink()

    def _check_writable(self, voice_id: str) -> None:
        if self.read_only:
            raise VoiceReadOnlyError(f"voice {voice_id!r} ships with the server and cannot be changed")


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
