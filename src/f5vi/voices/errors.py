"""Typed voice-library errors; each has a stable ``code`` and its HTTP status."""

from __future__ import annotations

from f5vi.errors import F5viError


class VoiceLibraryError(F5viError, code="voice_error"):
    """Base class of every error the voice library raises on purpose."""


class InvalidVoiceNameError(VoiceLibraryError, code="invalid_voice_name", http_status=400):
    """The voice id is malformed or tries to leave the voices directory."""


class VoiceNotFoundError(VoiceLibraryError, code="voice_not_found", http_status=404):
    """No voice with this id."""


class VoiceExistsError(VoiceLibraryError, code="voice_exists", http_status=409):
    """Upload to an id that is taken, without ``overwrite``."""


class VoiceReadOnlyError(VoiceLibraryError, code="voice_read_only", http_status=403):
    """The voice ships with the server (or lives in a directory marked read-only): it can be listed and
    used, never overwritten or deleted through the API, and its id cannot be uploaded to."""


class InvalidVoiceUploadError(VoiceLibraryError, code="invalid_voice_upload", http_status=422):
    """The upload is not usable audio, or its transcript cannot be trusted."""


class VoiceUploadTooLargeError(InvalidVoiceUploadError, code="voice_upload_too_large", http_status=413):
    """The uploaded file is larger than the configured limit."""


class VoiceUnreadableError(VoiceLibraryError, code="voice_unreadable"):
    """A stored voice file exists but cannot be read (corrupt file, bad encoding): a server fault."""


class TranscriptionUnavailableError(VoiceLibraryError, code="transcription_unavailable", http_status=422):
    """A transcript is needed but no transcriber is configured."""
