"""A request's text as segments to say: voice, speed factor, silence before, and source spans.

Both input forms become one :class:`SpeechScript`:

- plain text: split by ``[voice_id]`` tags (:mod:`f5vi.engine.text.voice_tags`); rate 1, no pauses;
- SSML (``text_type="ssml"``, or a text starting with ``<speak>``): :func:`f5vi.engine.text.ssml.parse_ssml`.

Every segment carries its text as :class:`~f5vi.engine.text.spans.SourcePiece` values, so what is said
maps back to the submitted text (timestamps, ``POST /normalize``'s lexicon hits). Planning turns each
segment into chunks (:mod:`f5vi.engine.planning`) and synthesis inserts each segment's
``pause_before_ms`` as digital silence before its first chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from f5vi.engine.errors import InvalidTextError
from f5vi.engine.text.spans import SourcePiece, join_pieces
from f5vi.engine.text.voice_tags import MAX_VOICES_PER_TEXT, split_voice_tag_pieces

TextType = Literal["text", "ssml", "auto"]


@dataclass(frozen=True)
class SpeechSegment:
    pieces: tuple[SourcePiece, ...]
    voice: str | None
    """A voice id (``[id]`` tag or ``<voice name>``); None: the request's own voice."""
    rate: float = 1.0
    """Multiplies the request's speed (``<prosody rate>``)."""
    pause_before_ms: int = 0
    """Silence (``<break>``) inserted before the segment's audio."""

    @property
    def text(self) -> str:
        return join_pieces(self.pieces)

    @property
    def char_start(self) -> int:
        return min(p.char_start for p in self.pieces)

    @property
    def char_end(self) -> int:
        return max(p.char_end for p in self.pieces)


@dataclass(frozen=True)
class SpeechScript:
    segments: tuple[SpeechSegment, ...]
    trailing_pause_ms: int = 0
    """Silence after the last segment (a ``<break>`` at the end of the document)."""
    ssml: bool = False

    def voices(self) -> tuple[str, ...]:
        """Distinct voice ids the segments name, in order of first use; at most MAX_VOICES_PER_TEXT."""
        voices = tuple(dict.fromkeys(s.voice for s in self.segments if s.voice is not None))
        if len(voices) > MAX_VOICES_PER_TEXT:
            raise InvalidTextError(
                f"the text names {len(voices)} different voices; at most {MAX_VOICES_PER_TEXT} are allowed"
            )
        return voices


def is_ssml(text: str, text_type: TextType = "auto") -> bool:
    from f5vi.engine.text.ssml import looks_like_ssml

    return text_type == "ssml" or (text_type == "auto" and looks_like_ssml(text))


def parse_script(text: str, text_type: TextType = "auto") -> SpeechScript:
    """Segments of ``text`` (see the module docstring). Raises InvalidTextError / SsmlError (422)."""
    if is_ssml(text, text_type):
        from f5vi.engine.text.ssml import parse_ssml

        return parse_ssml(text)
    return SpeechScript(
        tuple(SpeechSegment(tuple(pieces), voice) for voice, pieces in split_voice_tag_pieces(text))
    )
