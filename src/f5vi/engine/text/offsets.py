"""Which characters of the submitted text each spoken (normalised) word belongs to.

The normaliser rewrites the text ("2024" -> "hai nghìn không trăm hai mươi tư", "TP.HCM" -> "thành phố
hồ chí minh") and keeps no record of what came from where, so timestamps recover it afterwards:

1. the source is cut into tokens at whitespace, each with its span in the *submitted* text: the source
   comes as :class:`~f5vi.engine.text.spans.SourcePiece` values (what SSML parsing, voice tags and the
   lexicons handed on), and a token's span is :func:`~f5vi.engine.text.spans.source_span` of its
   characters — one to one inside a verbatim piece, the whole replaced span inside a reading;
2. tokens and spoken words are compared by their letters (NFC, lower case, outer punctuation off); the
   longest matching runs (:class:`difflib.SequenceMatcher`) anchor them one to one;
3. between two anchors the spoken words go to the source tokens in between, split at matching
   punctuation first, then in proportion to how many syllables each token is read as
   (:func:`reading_weight`: a digit group ~ two syllables per digit, an abbreviation one per letter).
   Words the normaliser added with no token of their own join the token before them.

Every spoken word ends up with the span of exactly one source token, spans never go backwards, and a
word that was not rewritten gets its own token's span: that is the guarantee the tests check.

Lexicon respellings and SSML readings (``<sub alias>``, ``<say-as>``) are non-verbatim pieces: every
spoken word read from one points at the whole word or markup it replaced.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from f5vi.engine.text.spans import SourcePiece, source_span

_TOKEN_RE = re.compile(r"\S+")
_EDGE_PUNCT = re.compile(r"^\W+|\W+$")
_PAUSE_END = re.compile(r"[,;:.!?…]\W*$")


@dataclass(frozen=True)
class SourceToken:
    """A whitespace-separated piece of the source, with its span in the submitted text."""

    text: str
    char_start: int
    char_end: int


def source_tokens(text: str, pieces: Sequence[SourcePiece] | None = None) -> list[SourceToken]:
    """Tokens of ``text`` with spans in the submitted text (``pieces``: where ``text`` came from,
    ``join_pieces(pieces) == text``; None: ``text`` is the submitted text itself)."""
    if pieces is None:
        return [SourceToken(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]
    return [
        SourceToken(m.group(), *source_span(pieces, m.start(), m.end())) for m in _TOKEN_RE.finditer(text)
    ]


def _key(word: str) -> str:
    return _EDGE_PUNCT.sub("", unicodedata.normalize("NFC", word).lower())


def reading_weight(token: str) -> float:
    """Roughly how many spoken syllables ``token`` becomes (only its ratio to its neighbours matters)."""
    core = _EDGE_PUNCT.sub("", token)
    digits = sum(c.isdigit() for c in core)
    letters = sum(c.isalpha() for c in core)
    if digits:
        return 2.0 * digits + letters
    if letters and (core.isupper() or "." in token) and letters <= 5:
        return float(letters)  # an abbreviation or acronym: about a syllable per letter
    return 1.0


def _share(counts: int, weights: list[float]) -> list[int]:
    """Split ``counts`` items into ``len(weights)`` runs proportional to weights (each >= 1 if possible)."""
    n = len(weights)
    if counts >= n:
        total = sum(weights)
        ends = [round(counts * sum(weights[: i + 1]) / total) for i in range(n)]
        sizes = [e - s for s, e in zip([0, *ends[:-1]], ends, strict=True)]
        # every token gets at least one word: borrow from the largest run
        for i, size in enumerate(sizes):
            if size == 0:
                j = max(range(n), key=lambda k: sizes[k])
                sizes[j] -= 1
                sizes[i] = 1
        return sizes
    return [1] * counts + [0] * (n - counts)


def _pause_groups(items: list[str]) -> list[list[int]]:
    """Indices cut after every item that ends in punctuation."""
    groups: list[list[int]] = [[]]
    for i, item in enumerate(items):
        groups[-1].append(i)
        if _PAUSE_END.search(item) and i < len(items) - 1:
            groups.append([])
    return groups


def _assign_block(tokens: list[SourceToken], words: list[str]) -> list[int]:
    """Token index (into ``tokens``) of each word, for a run with no anchor inside."""
    if not tokens:
        return []
    token_groups = _pause_groups([t.text for t in tokens])
    word_groups = _pause_groups(words)
    if len(token_groups) == len(word_groups) > 1:
        owner: list[int] = []
        for tg, wg in zip(token_groups, word_groups, strict=True):
            sub = _assign_block([tokens[i] for i in tg], [words[i] for i in wg])
            owner.extend(tg[0] + k for k in sub)
        return owner
    sizes = _share(len(words), [reading_weight(t.text) for t in tokens])
    return [i for i, size in enumerate(sizes) for _ in range(size)]


def map_words(
    text: str, spoken: Sequence[str], pieces: Sequence[SourcePiece] | None = None
) -> list[SourceToken]:
    """The source token (with its span in the submitted text) of each spoken word of ``text``.

    ``spoken`` are the normalised words in order (``normalized.split()``); ``pieces`` say where ``text``
    came from in the submitted text (see :func:`source_tokens`).
    """
    tokens = source_tokens(text, pieces)
    if not spoken:
        return []
    if not tokens:
        raise ValueError("spoken words with no source text to map them to")
    matcher = difflib.SequenceMatcher(None, [_key(t.text) for t in tokens], [_key(w) for w in spoken], False)
    owner: list[int | None] = [None] * len(spoken)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                owner[j1 + k] = i1 + k
        elif tag == "replace":
            for k, t in enumerate(_assign_block(tokens[i1:i2], list(spoken[j1:j2]))):
                owner[j1 + k] = i1 + t
    # words the normaliser added (no token of their own) join the token before (or after) them
    last: int | None = None
    for j, o in enumerate(owner):
        if o is None:
            owner[j] = last
        else:
            last = o
    first = next(o for o in owner if o is not None) if any(o is not None for o in owner) else 0
    resolved = [first if o is None else o for o in owner]
    return [tokens[o] for o in resolved]
