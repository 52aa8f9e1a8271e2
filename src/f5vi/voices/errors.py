"""Typed voice-library errors. Each carries a stable ``code`` that the API maps to an HTTP status."""

from __future__ import annotations


class VoiceLibraryError(Exception):
    """Base class of every error the voice library raises on purpose."""

    code: str = "voice_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidVoiceNameError(VoiceLibraryError):
    """The voice id is malformed or tries to leave the voices directory (HTTP 400/422)."""

    code = "invalid_voice_name"


class VoiceNotFoundError(VoiceLibraryError):
    """No voice with this id (HTTP 404)."""

    code = "voice_not_found"


class VoiceExistsError(VoiceLibraryError):
    """Upload to an id that is taken, without ``overwrite`` (HTTP 409)."""

    code = "voice_exists"


class InvalidVoiceUploadError(VoiceLibraryError):
    """The upload is not usable audio, or its transcript cannot be trusted (HTTP 422)."""

    code = "invalid_voice_upload"


class VoiceUploadTooLargeError(InvalidVoiceUploadError):
    """The uploaded file is larger than the configured limit (HTTP 413)."""

    code = "voice_upload_too_large"


class VoiceUnreadableError(VoiceLibraryError):
    """A stored voice file exists but cannot be read (corrupt file, bad encoding) (HTTP 500)."""

    code = "voice_unreadable"


class TranscriptionUnavailableError(VoiceLibraryError):
    """A transcript is needed but no transcriber is configured (HTTP 503 or 422)."""

    code = "transcription_unavailable"
