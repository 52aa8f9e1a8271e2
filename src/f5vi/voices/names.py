"""Voice ids and the ``ref_name`` forms that name them: one rule, as code and as OpenAPI patterns.

A voice is named by an id from a strict ASCII allow-list, never by a path. The code below is what the
server enforces (with messages that say what is wrong); :data:`VOICE_ID_PATTERN` and
:data:`REF_NAME_PATTERN` state exactly the same rule as regular expressions for the API description,
so generated clients and contract testers know it (a test checks the two agree). Both patterns work
in ECMA-262 (JSON Schema) and Python ``re``.
"""

from __future__ import annotations

import re

from f5vi.voices.errors import InvalidVoiceNameError

MAX_VOICE_ID_CHARS = 64
MAX_REF_NAME_CHARS = 256
"""Longest ``ref_name`` looked at (prefix + id + suffix); anything longer is refused unparsed."""
AUDIO_SUFFIX = ".wav"
TRANSCRIPT_SUFFIX = ".txt"
METADATA_SUFFIX = ".json"
RESERVED_ID_SUFFIXES = (AUDIO_SUFFIX, TRANSCRIPT_SUFFIX, METADATA_SUFFIX, ".tmp")
_NAME_PREFIXES = ("voice:",)
_DIR_PREFIXES = ("sample/", "voices/")
"""The seed's ``ref_name`` forms: ``3_Nu``, ``3_Nu.wav``, ``sample/3_Nu.wav``; plus ours."""
_SPACE = " \t\r\n"
"""What is stripped around a ``ref_name`` (JSON's whitespace; the same in every regex dialect)."""

VOICE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""The characters of a voice id (the full rule is :func:`validate_voice_id`)."""

_ID_BODY = r"[A-Za-z0-9](?:\.?[A-Za-z0-9_-])*\.?"  # no two dots in a row, by construction
_NOT_RESERVED = "".join(
    "(?<!" + re.escape(suffix[0]) + "".join(f"[{c.upper()}{c}]" for c in suffix[1:]) + ")"
    for suffix in RESERVED_ID_SUFFIXES
)  # the id does not end with .wav/.txt/.json/.tmp, in any case
_WAV = "(?:" + r"\." + "".join(f"[{c.upper()}{c}]" for c in AUDIO_SUFFIX[1:]) + ")"
_ID_CHAR = "[A-Za-z0-9._-]"

VOICE_ID_PATTERN = "^" + _ID_BODY + _NOT_RESERVED + "$"
"""A voice id: 1-64 (``maxLength``) ASCII letters, digits, ``.``, ``_``, ``-``, starting with a letter
or digit, no ``..``, not ending with ``.wav``, ``.txt``, ``.json`` or ``.tmp``."""

REF_NAME_PATTERN = (
    "^[ \\t\\r\\n]*(?:voice:)?(?:(?:sample|voices)/)?"
    f"(?={_ID_CHAR}{{1,{MAX_VOICE_ID_CHARS}}}{_WAV}?(?!{_ID_CHAR}))"  # the id is at most 64 characters
    + _ID_BODY
    + _NOT_RESERVED
    + _WAV
    + "?[ \\t\\r\\n]*$"
)
"""``vi_north_male``, ``vi_north_male.wav``, ``sample/vi_north_male.wav``, ``voices/vi_north_male.wav``
or ``voice:vi_north_male`` (a voice id, :data:`VOICE_ID_PATTERN`), optionally with surrounding spaces."""


def validate_voice_id(voice_id: object) -> str:
    """Return ``voice_id`` if it is a valid id to store a voice under, else raise InvalidVoiceNameError."""
    if not isinstance(voice_id, str):
        raise InvalidVoiceNameError(f"voice id must be a string, got {type(voice_id).__name__}")
    if not VOICE_ID_RE.fullmatch(voice_id):
        raise InvalidVoiceNameError(
            f"invalid voice id {shorten(voice_id)!r}: use 1-64 ASCII letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if ".." in voice_id:
        raise InvalidVoiceNameError(f"invalid voice id {voice_id!r}: '..' is not allowed")
    if voice_id.lower().endswith(RESERVED_ID_SUFFIXES):
        raise InvalidVoiceNameError(
            f"invalid voice id {voice_id!r}: must not end with {', '.join(RESERVED_ID_SUFFIXES)}"
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
    name = ref_name.strip(_SPACE)
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
            f"invalid voice name {shorten(ref_name)!r}: expected a voice id such as 'vi_north_male' "
            "(optionally 'vi_north_male.wav', 'sample/vi_north_male.wav' or 'voice:vi_north_male')"
        ) from None


def shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
