"""Lexicons: the user's own readings of words, applied before normalisation.

F5-TTS reads characters, not phonemes, so a reading is fixed by respelling: ``GPT`` -> ``gi pi ti``,
``Nguyen`` -> ``Nguyễn``. An entry replaces whole words only (``GPT`` does not touch ``GPTs``), either
case-insensitively (the default) or with exactly its case.

Three levels, the higher wins when both have an entry for the same word:

1. **request**: the ``lexicon`` field of a request (``[{"term", "say", "case_sensitive"}]``);
2. **voice**: ``<voice id>.lexicon`` beside the voice's ``.wav`` in the voices directories;
3. **server**: the files listed in ``F5VI_LEXICON_PATHS``.

The file format (UTF-8, one entry a line)::

    # a comment; blank lines are ignored
    GPT = gi pi ti          # case-insensitive: also "gpt", "Gpt"
    iOS == ai ô ét          # "==": case-sensitive, only "iOS"

A term is one or more words (letters, digits, ``. & - ' +`` and spaces inside), at most
:data:`MAX_TERM_CHARS`; the reading is what the normaliser then reads, at most :data:`MAX_SAY_CHARS`.
A file that breaks a rule raises :class:`LexiconFileError` naming the file, line and reason (the
server refuses to start); a bad request entry raises :class:`InvalidLexiconError` (422).

Where a term matches, the longest term wins; among entries for the same word the level order above
decides, and within a level a case-sensitive entry beats a case-insensitive one.
:meth:`Lexicon.apply` reports every replacement as a :class:`LexiconHit` with the span it replaced in
the submitted text (see :mod:`f5vi.engine.text.spans`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from f5vi.engine.errors import InvalidParameterError
from f5vi.engine.text.spans import SourcePiece

LexiconLevel = Literal["request", "voice", "server"]
LEVELS: tuple[LexiconLevel, ...] = ("request", "voice", "server")
"""Highest precedence first."""
MAX_TERM_CHARS = 100
MAX_SAY_CHARS = 300
MAX_REQUEST_ENTRIES = 500
MAX_FILE_ENTRIES = 50_000
LEXICON_SUFFIX = ".lexicon"
"""A voice's own lexicon: ``<voice id>.lexicon`` beside ``<voice id>.wav``."""

_TERM_RE = re.compile(r"^[\w][\w.&'+\-]*(?: [\w.&'+\-]+)*$")
"""Words of letters/digits and a few joiners, single spaces between them."""


class InvalidLexiconError(InvalidParameterError):
    """A request's lexicon entry is malformed (422)."""


class LexiconFileError(ValueError):
    """A lexicon file is malformed: ``path:line: reason``. Raised at start-up, which it stops."""

    def __init__(self, path: Path | str, line: int, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line}: {reason}")


@dataclass(frozen=True)
class LexiconEntry:
    term: str
    say: str
    case_sensitive: bool = False
    level: LexiconLevel = "request"
    origin: str = ""
    """Where the entry was written: ``file:line`` or ``request[index]``."""

    def key(self) -> str:
        return self.term if self.case_sensitive else self.term.casefold()

    def matches(self, word: str) -> bool:
        return word == self.term if self.case_sensitive else word.casefold() == self.term.casefold()


@dataclass(frozen=True)
class LexiconHit:
    """One replacement: the submitted text's span ``[char_start, char_end)``, what was there, the entry."""

    char_start: int
    char_end: int
    matched: str
    entry: LexiconEntry


def check_entry(term: str, say: str) -> str | None:
    """Why ``term = say`` is not a valid entry, or ``None``."""
    if not term:
        return "the term is empty"
    if len(term) > MAX_TERM_CHARS:
        return f"the term is longer than {MAX_TERM_CHARS} characters"
    if not _TERM_RE.match(term):
        return (
            f"the term {term!r} must be words of letters and digits (with . & - ' + inside), "
            "single spaces between them"
        )
    if not say.strip():
        return f"the reading of {term!r} is empty"
    if len(say) > MAX_SAY_CHARS:
        return f"the reading of {term!r} is longer than {MAX_SAY_CHARS} characters"
    if any(c in say for c in "\n\r\t<>[]"):
        return f"the reading of {term!r} contains a line break, a tab, '<', '>', '[' or ']'"
    return None


def parse_lexicon_text(text: str, origin: str, level: LexiconLevel) -> list[LexiconEntry]:
    """Entries of a lexicon file's text (see the module docstring); raises :class:`LexiconFileError`."""
    entries: list[LexiconEntry] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if " #" in line:  # a trailing comment
            line = line[: line.index(" #")].rstrip()
        if "==" in line:
            term, _, say = line.partition("==")
            sensitive = True
        elif "=" in line:
            term, _, say = line.partition("=")
            sensitive = False
        else:
            raise LexiconFileError(origin, number, "expected 'TERM = READING' (or 'TERM == READING')")
        term, say = " ".join(term.split()), " ".join(say.split())
        reason = check_entry(term, say) or ("'=' in the reading" if "=" in say else None)
        if reason:
            raise LexiconFileError(origin, number, reason)
        entry = LexiconEntry(term, say, sensitive, level, f"{origin}:{number}")
        if entry.key() in seen:
            raise LexiconFileError(origin, number, f"{term!r} is already defined on line {seen[entry.key()]}")
        seen[entry.key()] = number
        entries.append(entry)
        if len(entries) > MAX_FILE_ENTRIES:
            raise LexiconFileError(origin, number, f"more than {MAX_FILE_ENTRIES} entries")
    return entries


def read_lexicon_file(path: Path, level: LexiconLevel) -> list[LexiconEntry]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LexiconFileError(path, 0, f"not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise LexiconFileError(path, 0, f"cannot read the file ({exc.strerror or exc})") from exc
    return parse_lexicon_text(text, str(path), level)


def request_entries(items: Sequence[tuple[str, str, bool]]) -> list[LexiconEntry]:
    """A request's entries ``(term, say, case_sensitive)``; raises :class:`InvalidLexiconError` (422)."""
    if len(items) > MAX_REQUEST_ENTRIES:
        raise InvalidLexiconError(f"lexicon: at most {MAX_REQUEST_ENTRIES} entries per request")
    entries: list[LexiconEntry] = []
    for index, (term, say, sensitive) in enumerate(items):
        term, say = " ".join(term.split()), " ".join(say.split())
        reason = check_entry(term, say)
        if reason:
            raise InvalidLexiconError(f"lexicon[{index}]: {reason}")
        entries.append(LexiconEntry(term, say, sensitive, "request", f"request[{index}]"))
    return entries


class Lexicon:
    """Entries of one or more levels, ready to apply (immutable once built; safe across threads)."""

    def __init__(self, entries: Iterable[LexiconEntry] = ()) -> None:
        order = {level: rank for rank, level in enumerate(LEVELS)}
        # precedence: level, then case-sensitive before insensitive, then file order
        self.entries: tuple[LexiconEntry, ...] = tuple(
            sorted(entries, key=lambda e: (order[e.level], not e.case_sensitive))
        )
        # first (highest precedence) entry per exact term and per folded term, with its rank
        self._exact: dict[str, tuple[int, LexiconEntry]] = {}
        self._folded: dict[str, tuple[int, LexiconEntry]] = {}
        for rank, entry in enumerate(self.entries):
            table = self._exact if entry.case_sensitive else self._folded
            table.setdefault(entry.key(), (rank, entry))
        self._pattern = self._compile()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lexicon) and other.entries == self.entries

    def __hash__(self) -> int:
        return hash(self.entries)

    def __repr__(self) -> str:
        return f"Lexicon({len(self.entries)} entries)"

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def merged(self, other: Lexicon) -> Lexicon:
        return Lexicon((*self.entries, *other.entries))

    def _compile(self) -> re.Pattern[str] | None:
        if not self.entries:
            return None
        alternatives: dict[str, None] = {}
        for entry in sorted(self.entries, key=lambda e: -len(e.term)):
            escaped = re.escape(entry.term).replace(r"\ ", r"\s+")
            alternatives[escaped if entry.case_sensitive else f"(?i:{escaped})"] = None
        return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")

    def lookup(self, word: str) -> LexiconEntry | None:
        """The entry that reads ``word`` (highest level first), or ``None``."""
        plain = " ".join(word.split())
        found = [hit for hit in (self._exact.get(plain), self._folded.get(plain.casefold())) if hit]
        return min(found, key=lambda hit: hit[0])[1] if found else None

    def apply(self, pieces: Sequence[SourcePiece]) -> tuple[list[SourcePiece], list[LexiconHit]]:
        """Respell whole words in ``pieces``; a replaced word becomes its own non-verbatim piece.

        Only verbatim pieces (the user's own words) are respelled: an alias or say-as reading the
        user wrote in SSML is already what they want said.
        """
        if self._pattern is None:
            return list(pieces), []
        out: list[SourcePiece] = []
        hits: list[LexiconHit] = []
        for piece in pieces:
            if not piece.verbatim:
                out.append(piece)
                continue
            position = 0
            for match in self._pattern.finditer(piece.text):
                entry = self.lookup(match.group(0))
                if entry is None:
                    continue
                if match.start() > position:
                    out.append(_sub_piece(piece, position, match.start()))
                start, end = piece.char_start + match.start(), piece.char_start + match.end()
                out.append(SourcePiece(entry.say, start, end, verbatim=False))
                hits.append(LexiconHit(start, end, match.group(0), entry))
                position = match.end()
            if position < len(piece.text) or not piece.text:
                out.append(_sub_piece(piece, position, len(piece.text)))
        return out, hits


def _sub_piece(piece: SourcePiece, start: int, end: int) -> SourcePiece:
    return SourcePiece(piece.text[start:end], piece.char_start + start, piece.char_start + end)


def load_server_lexicon(paths: Sequence[Path]) -> Lexicon:
    """The server level from ``F5VI_LEXICON_PATHS``; a later file's entry for a word an earlier file
    defines is an error too (one word, one reading per level). Raises :class:`LexiconFileError`."""
    entries: list[LexiconEntry] = []
    seen: dict[str, str] = {}
    for path in paths:
        for entry in read_lexicon_file(path, "server"):
            if entry.key() in seen:
                line = int(entry.origin.rsplit(":", 1)[1])
                raise LexiconFileError(
                    path, line, f"{entry.term!r} is already defined at {seen[entry.key()]}"
                )
            seen[entry.key()] = entry.origin
            entries.append(entry)
    return Lexicon(entries)
