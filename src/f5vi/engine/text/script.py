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

from typing import Literal

from f5vi.engine.text.segments import SpeechScript, SpeechSegment
from f5vi.engine.text.ssml import looks_like_ssml, parse_ssml
from f5vi.engine.text.voice_tags import split_voice_tag_pieces

TextType = Literal["text", "ssml", "auto"]


def is_ssml(text: str, text_type: TextType = "auto") -> bool:
    return text_type == "ssml" or (text_type == "auto" and looks_like_ssml(text))


def parse_script(text: str, text_type: TextType = "auto") -> SpeechScript:
    """Segments of ``text`` (see the module docstring). Raises InvalidTextError / SsmlError (422)."""
    if is_ssml(text, text_type):
        return parse_ssml(text)
    return SpeechScript(
        tuple(SpeechSegment(tuple(pieces), voice) for voice, pieces in split_voice_tag_pieces(text))
    )
