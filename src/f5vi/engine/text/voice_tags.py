"""Voice tags: ``[voice_id]`` in the text switches the reference voice for the text that follows.

``Xin chào. [vi_south_female] Chào anh. [vi_north_male] Hẹn gặp lại.`` is three segments: the first in
the request's own voice, then one per tag (as upstream F5-TTS's CLI reads ``[name]`` and its
multi-speech tab ``{name}``). The grammar, in full:

- ``[`` + a voice id + ``]`` is a tag. A voice id is what the voice library accepts
  (:data:`VOICE_ID_PATTERN`: ASCII letters, digits, ``.``, ``_``, ``-``; first a letter or digit;
  at most 64 characters);
- ``[[`` is a literal ``[`` (``[[1]`` reads "[1]", not voice ``1``); any other ``[`` or ``]`` is text
  as it is (``[ghi chú]`` has a space, so it is no tag);
- a segment with nothing but whitespace (two tags in a row, a tag at the end) is dropped; a text
  with nothing but tags has nothing to say (:class:`InvalidTextError`).

The grammar lives in the engine because planning splits the text by it; which ids exist is the voice
library's business, checked by the job layer before anything is queued.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from f5vi.engine.errors import InvalidTextError

VOICE_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
"""The voice library's id pattern (``f5vi.voices.library.VOICE_ID_RE``; a test keeps them equal)."""
MAX_VOICES_PER_TEXT = 16
"""Different tagged voices one text may name: bounds the look-ups and transcriptions of a request."""

_TOKEN_RE = re.compile(r"\[\[|\[(" + VOICE_ID_PATTERN + r")\]")
"""An escaped ``[`` or a tag, whichever starts first; everything between matches is text."""


@dataclass(frozen=True)
class VoiceSegment:
    """A stretch of text and the voice that says it (``None``: the request's own voice)."""

    voice: str | None
    text: str
    source: tuple[int, ...] = field(default=(), compare=False, repr=False)
    """Offset map: ``source[i]`` is where ``text[i]`` stands in the tagged text (``[[`` reads as one
    ``[``), so timestamps can point into what the client submitted (:mod:`f5vi.engine.text.offsets`)."""


def split_voice_tags(text: str) -> list[VoiceSegment]:
    """The segments of ``text`` in order (see the module docstring for the grammar).

    A text without tags or escapes is one segment holding ``text`` unchanged, so single-voice
    synthesis sees exactly what it saw before tags existed.
    """
    segments: list[VoiceSegment] = []
    voice: str | None = None
    parts: list[tuple[str, int]] = []  # (piece, where it starts in ``text``)
    position = 0
    for match in _TOKEN_RE.finditer(text):
        parts.append((text[position : match.start()], position))
        position = match.end()
        if match.group(1) is None:  # "[[": a literal "["
            parts.append(("[", match.start()))
            continue
        _append(segments, voice, parts)
        voice, parts = match.group(1), []
    parts.append((text[position:], position))
    _append(segments, voice, parts)
    if not segments:
        raise InvalidTextError("the text has nothing to say besides voice tags; write '[[' for a literal '['")
    return segments


def tagged_voices(segments: list[VoiceSegment]) -> tuple[str, ...]:
    """The distinct voice ids the tags name, in order of first use; at most :data:`MAX_VOICES_PER_TEXT`."""
    voices = tuple(dict.fromkeys(s.voice for s in segments if s.voice is not None))
    if len(voices) > MAX_VOICES_PER_TEXT:
        raise InvalidTextError(
            f"the text names {len(voices)} different voices; at most {MAX_VOICES_PER_TEXT} are allowed"
        )
    return voices


def _append(segments: list[VoiceSegment], voice: str | None, parts: list[tuple[str, int]]) -> None:
    text = "".join(piece for piece, _ in parts)
    if text.strip():
        source = tuple(start + i for piece, start in parts for i in range(len(piece)))
        segments.append(VoiceSegment(voice, text, source))
