"""Reference voices: a directory of ``<id>.wav`` + ``<id>.txt``, resolved safely by id."""

from f5vi.voices.errors import (
    InvalidVoiceNameError,
    InvalidVoiceUploadError,
    TranscriptionUnavailableError,
    VoiceExistsError,
    VoiceLibraryError,
    VoiceNotFoundError,
    VoiceUnreadableError,
    VoiceUploadTooLargeError,
)
from f5vi.voices.library import (
    VOICE_ID_RE,
    Voice,
    VoiceLibrary,
    normalize_transcript,
    parse_voice_name,
    validate_voice_id,
)

__all__ = [
    "VOICE_ID_RE",
    "InvalidVoiceNameError",
    "InvalidVoiceUploadError",
    "TranscriptionUnavailableError",
    "Voice",
    "VoiceExistsError",
    "VoiceLibrary",
    "VoiceLibraryError",
    "VoiceNotFoundError",
    "VoiceUnreadableError",
    "VoiceUploadTooLargeError",
    "normalize_transcript",
    "parse_voice_name",
    "validate_voice_id",
]
