"""Where each piece of text came from: character spans in the text the client submitted.

Every stage before the normaliser (SSML parsing, voice tags, lexicon respellings) hands on
:class:`SourcePiece` values instead of bare strings: the text the next stage reads, plus the
half-open span ``[char_start, char_end)`` of the *submitted* text (Python ``str`` indices, i.e.
Unicode code points) it stands for. A piece that a stage invented (a ``<sub alias>``, a
``<say-as>`` reading, a lexicon respelling) spans the markup or word it replaced; a piece that is
markup-free text spans itself, so ``submitted[p.char_start:p.char_end] == p.text`` holds for it
(:attr:`SourcePiece.verbatim`).

Word-level timestamps (issue 22) map the model's words back to the user's text through these spans;
``POST /normalize`` reports lexicon hits with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SourcePiece:
    """A piece of text handed to the next stage and the span of the submitted text it came from."""

    text: str
    char_start: int
    char_end: int
    verbatim: bool = True
    """``True`` when ``text`` is exactly ``submitted[char_start:char_end]``; ``False`` for a reading
    that replaced the span (alias, say-as, respelling, an XML entity)."""

    def __post_init__(self) -> None:
        if not 0 <= self.char_start <= self.char_end:
            raise ValueError(f"bad span [{self.char_start}, {self.char_end})")


def join_pieces(pieces: Sequence[SourcePiece]) -> str:
    """The text the next stage reads: the pieces' texts concatenated."""
    return "".join(p.text for p in pieces)


def source_span(pieces: Sequence[SourcePiece], start: int, end: int) -> tuple[int, int]:
    """The submitted-text span of ``join_pieces(pieces)[start:end]``.

    Inside a verbatim piece offsets map one to one; a position inside a replaced piece maps to the
    whole of that piece's span (a reading cannot be split back into the characters it replaced).
    """
    if not pieces:
        return (0, 0)
    lo: int | None = None
    hi: int | None = None
    offset = 0
    for piece in pieces:
        length = len(piece.text)
        p_start, p_end = offset, offset + length
        offset = p_end
        if p_end <= start and not (length == 0 and p_start == start):
            continue
        if p_start >= end and not (start == end == p_start):
            break
        if piece.verbatim:
            a = piece.char_start + max(start - p_start, 0)
            b = piece.char_start + min(end, p_end) - p_start
        else:
            a, b = piece.char_start, piece.char_end
        lo = a if lo is None else min(lo, a)
        hi = b if hi is None else max(hi, b)
    if lo is None or hi is None:
        last = pieces[-1]
        return (last.char_end, last.char_end)
    return (lo, hi)
