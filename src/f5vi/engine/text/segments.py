"""What a text is said as: segments (voice, speed factor, silence before, source pieces) of a script.

Made by the two parsers of :mod:`f5vi.engine.text.script` (plain text with ``[voice_id]`` tags) and
:mod:`f5vi.engine.text.ssml`; read by planning. A module of its own so both parsers build the same
types without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from f5vi.engine.errors import InvalidTextError
from f5vi.engine.text.spans import SourcePiece, join_pieces
from f5vi.engine.text.voice_tags import MAX_VOICES_PER_TEXT


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
