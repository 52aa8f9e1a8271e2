"""Reference voices: directories of ``<id>.wav`` + ``<id>.txt``, resolved safely by id."""

from f5vi.voices.errors import (
    InvalidVoiceNameError,
    InvalidVoiceUploadError,
    TranscriptionUnavailableError,
    VoiceExistsError,
    VoiceLibraryError,
    VoiceNotFoundError,
    VoiceReadOnlyError,
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
from f5vi.voices.names import REF_NAME_PATTERN, VOICE_ID_PATTERN

__all__ = [
    "REF_NAME_PATTERN",
    "VOICE_ID_PATTERN",
    "VOICE_ID_RE",
    "InvalidVoiceNameError",
    "InvalidVoiceUploadError",
    "TranscriptionUnavailableError",
    "Voice",
    "VoiceExistsError",
    "VoiceLibrary",
    "VoiceLibraryError",
    "VoiceNotFoundError",
    "VoiceReadOnlyError",
    "VoiceUnreadableError",
    "VoiceUploadTooLargeError",
    "normalize_transcript",
    "parse_voice_name",
    "validate_voice_id",
]
