"""Splitting long text into chunks, and upstream's chunk budget and duration formulas.

Two chunkers live here:

* :func:`chunk_text` — **the one the synthesizer should use by default.** Sentence first, then clause,
  then (last resort) word boundaries; it never splits inside "TP.HCM", "3,5", "2.5" or "10:30", does not
  end a sentence after abbreviations such as "Tp." or "Mr.", keeps closing quotes with their sentence,
  treats line breaks as sentence ends and folds very short pieces ("Vâng.") into a neighbour, because
  F5-TTS renders tiny chunks badly.
* :func:`chunk_text_upstream` — upstream F5-TTS's ``chunk_text``, kept for parity tests and for callers
  that want byte-identical behaviour with the reference implementation.

Both measure length in **UTF-8 bytes**, as upstream does: the budget from
:func:`max_chars_for_reference` and the duration from :func:`estimate_duration_frames` are byte-based too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# --- upstream parity --------------------------------------------------------------------------------

_UPSTREAM_SPLIT = re.compile(r"(?<=[;:,.!?])\s+|(?<=[；：，。！？])")


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def chunk_text_upstream(text: str, max_chars: int = 135) -> list[str]:
    """Upstream ``chunk_text``: split after ``;:,.!?`` + whitespace (or CJK punctuation), pack by bytes.

    A piece is appended with a trailing space when it ends in a one-byte character, and chunks are
    stripped — exactly as upstream, including its quirks (a chunk can exceed ``max_chars`` when a single
    piece is longer).
    """
    chunks: list[str] = []
    current = ""
    for piece in _UPSTREAM_SPLIT.split(text):
        addition = piece + " " if piece and _nbytes(piece[-1]) == 1 else piece
        if _nbytes(current) + _nbytes(piece) <= max_chars:
            current += addition
        else:
            if current:
                chunks.append(current.strip())
            current = addition
    if current:
        chunks.append(current.strip())
    return chunks


REFERENCE_WINDOW_SECONDS = 22.0
"""Upstream budgets ref + generated audio per chunk against this many seconds."""

SHORT_TEXT_BYTES = 10
SHORT_TEXT_SPEED = 0.3


def max_chars_for_reference(ref_text: str, ref_samples: int, sample_rate: int, speed: float) -> int:
    """Chunk budget (bytes) that ``infer_process`` gives ``chunk_text``.

    ``int(bytes(ref_text) / ref_seconds * (22 - ref_seconds) * speed)``: the reference's speaking rate
    times the seconds left in the 22 s window. ``ref_text`` is the prepared transcript
    (:func:`f5vi.engine.text.normalizer.prepare_ref_text`), before the trailing-space rule.
    """
    if ref_samples <= 0 or sample_rate <= 0:
        raise ValueError("reference audio must have a positive number of samples and sample rate")
    seconds = ref_samples / sample_rate
    if seconds >= REFERENCE_WINDOW_SECONDS:
        raise ValueError(
            f"reference audio of {seconds:.1f} s leaves no room in the "
            f"{REFERENCE_WINDOW_SECONDS:.0f} s window"
        )
    return int(_nbytes(ref_text) / seconds * (REFERENCE_WINDOW_SECONDS - seconds) * speed)


def estimate_duration_frames(ref_text: str, ref_frames: int, gen_text: str, speed: float) -> int:
    """Total mel frames (reference + generated) for one chunk, as ``infer_batch_process`` computes them.

    ``ref_text`` must be the exact reference string concatenated in front of the chunk, i.e. after
    :func:`~.normalizer.ref_text_for_model` (which adds the trailing space). A chunk under 10 bytes is
    given speed 0.3 (upstream's guard against too-short output for a word or two).
    """
    ref_bytes = _nbytes(ref_text)
    if ref_bytes == 0:
        raise ValueError("reference text is empty")
    if speed <= 0:
        raise ValueError("speed must be positive")
    gen_bytes = _nbytes(gen_text)
    local_speed = SHORT_TEXT_SPEED if gen_bytes < SHORT_TEXT_BYTES else speed
    # same operation order as upstream, so the float rounding (and the int()) agree
    return ref_frames + int(ref_frames / ref_bytes * gen_bytes / local_speed)


# --- our Vietnamese chunker -------------------------------------------------------------------------

ABBREVIATIONS = frozenset(
    {
        # Vietnamese
        "tp", "q", "p", "tx", "tt", "h", "x", "ts", "ths", "pgs", "gs", "bs", "ks", "ls", "ncs", "th",
        "thpt", "nxb", "tr", "st", "đ", "v.v", "vv", "ctcp", "cty", "dt",
        # English
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "vs", "no", "etc", "e.g", "i.e", "inc", "ltd", "co",
    }
)  # fmt: skip
"""Words that end with a dot without ending the sentence ("Tp. Hồ Chí Minh", "Mr. Smith")."""

_INITIALS = frozenset("BCDĐFGHJKLMNPQRSTVWXZ")
_SENTENCE_END = frozenset(".!?")
_CLAUSE_END = frozenset(",;:…")
_CLOSERS = frozenset("\"')]}»”’")
_DASHES = frozenset({"-", "–", "—"})


@dataclass
class _Piece:
    text: str
    level: int  # strength of the boundary after this piece: 1 sentence, 2 clause, 3 word


def _last_word(text: str) -> str:
    return text.rsplit(None, 1)[-1] if text.strip() else ""


def _is_abbreviation(word_with_dot: str) -> bool:
    word = word_with_dot.rstrip(".").lstrip("(\"'[")
    if not word:
        return False
    if word.lower() in ABBREVIATIONS:
        return True
    # an initial such as "Nguyễn V. A": an uppercase consonant (vowels are interjections: "Ừ.", "A.")
    return len(word) == 1 and word in _INITIALS


def _boundary_level(words: list[str], index: int) -> int:
    """Strength of the boundary after ``words[index]`` (words are whitespace-separated)."""
    word = words[index]
    nxt = words[index + 1] if index + 1 < len(words) else ""
    core = word.rstrip("".join(_CLOSERS))
    if not core:
        return 3
    if core.endswith("..."):
        return 2  # an ellipsis is a pause, not necessarily a sentence end
    last = core[-1]
    if last in _SENTENCE_END:
        if last == "." and _is_abbreviation(core):
            return 3
        return 1
    if last in _CLAUSE_END:
        return 2
    if nxt in _DASHES:
        return 2  # "... đó - và ..." : break before the dash
    return 3


def boundary_levels(words: list[str]) -> list[int]:
    """Strength of the boundary after each whitespace-separated word: 1 sentence, 2 clause, 3 word.

    The same reading of abbreviations, initials and decimals as :func:`chunk_text` (timestamps cut the
    submitted text into sentences with it).
    """
    return [_boundary_level(words, i) for i in range(len(words))]


def _split_paragraph(paragraph: str) -> list[_Piece]:
    """Words of one paragraph with the strength of the boundary after each."""
    words = paragraph.split()
    return [_Piece(word, _boundary_level(words, i)) for i, word in enumerate(words)]


def _group(pieces: list[_Piece], level: int) -> list[list[_Piece]]:
    """Cut a piece list after every boundary of strength <= ``level``."""
    groups: list[list[_Piece]] = []
    current: list[_Piece] = []
    for piece in pieces:
        current.append(piece)
        if piece.level <= level:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _text(pieces: list[_Piece]) -> str:
    return " ".join(p.text for p in pieces)


def _pack(units: list[str], max_bytes: int) -> list[str]:
    """Join consecutive units with spaces into as few chunks as fit, then as evenly sized as possible.

    Dynamic programme over cut positions: minimise (number of chunks, sum of squared slack). A unit
    longer than ``max_bytes`` is a chunk on its own.
    """
    n = len(units)
    sizes = [_nbytes(u) for u in units]
    best: list[tuple[int, int] | None] = [None] * (n + 1)
    cut_from = [0] * (n + 1)
    best[0] = (0, 0)
    for end in range(1, n + 1):
        size = -1
        for start in range(end - 1, -1, -1):
            size += sizes[start] + 1
            if size > max_bytes and start < end - 1:
                break
            prev = best[start]
            if prev is None:
                continue
            slack = max(max_bytes - size, 0)
            candidate = (prev[0] + 1, prev[1] + slack * slack)
            current = best[end]
            if current is None or candidate < current:
                best[end] = candidate
                cut_from[end] = start
    chunks: list[str] = []
    end = n
    while end > 0:
        start = cut_from[end]
        chunks.append(" ".join(units[start:end]))
        end = start
    return chunks[::-1]


def _split_to_fit(pieces: list[_Piece], max_bytes: int, level: int) -> list[str]:
    """Units no longer than ``max_bytes`` (where possible), using boundaries of ``level`` then weaker."""
    text = _text(pieces)
    if _nbytes(text) <= max_bytes or level > 3:
        return [text]
    units: list[str] = []
    for group in _group(pieces, level):
        units.extend(_split_to_fit(group, max_bytes, level + 1))
    return _pack(units, max_bytes)


def _merge_short(chunks: list[str], max_bytes: int, min_bytes: int) -> list[str]:
    """Fold chunks under ``min_bytes`` into the smaller neighbour, allowing ``min_bytes`` of overflow."""
    limit = max_bytes + min_bytes
    merged = list(chunks)
    i = 0
    while i < len(merged) and len(merged) > 1:
        if _nbytes(merged[i]) >= min_bytes:
            i += 1
            continue
        prev_size = _nbytes(merged[i - 1]) if i > 0 else None
        next_size = _nbytes(merged[i + 1]) if i + 1 < len(merged) else None
        options = []
        if prev_size is not None and prev_size + 1 + _nbytes(merged[i]) <= limit:
            options.append((prev_size, i - 1))
        if next_size is not None and next_size + 1 + _nbytes(merged[i]) <= limit:
            options.append((next_size, i + 1))
        if not options:
            i += 1
            continue
        _, j = min(options)
        lo, hi = min(i, j), max(i, j)
        merged[lo : hi + 1] = [f"{merged[lo]} {merged[hi]}"]
        i = lo
    return merged


def chunk_text(text: str, max_chars: int = 135, *, min_chars: int = 12) -> list[str]:
    """Split Vietnamese text into chunks of at most ``max_chars`` UTF-8 bytes.

    Order of preference: line breaks and sentence ends (``.!?`` followed by a space, except after an
    abbreviation), then clause marks (``,;:…``, an ellipsis, a spaced dash), then spaces. Marks only count
    when followed by whitespace, so "3,5", "2.5", "10:30" and "TP.HCM" are never split; a word is never
    cut, so a single word longer than ``max_chars`` becomes a chunk of its own. Neighbouring pieces are
    packed together up to ``max_chars``; a chunk shorter than ``min_chars`` bytes is then merged into its
    shorter neighbour, which may exceed ``max_chars`` by at most ``min_chars``.

    Whitespace is collapsed: ``" ".join(chunks)`` equals the input with every whitespace run replaced by one
    space.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    units: list[str] = []
    for paragraph in text.splitlines():
        pieces = _split_paragraph(paragraph)
        if not pieces:
            continue
        pieces[-1].level = 1
        for sentence in _group(pieces, 1):
            units.extend(_split_to_fit(sentence, max_chars, 2))
    chunks = _pack(units, max_chars)
    return _merge_short(chunks, max_chars, min_chars) if min_chars > 0 else chunks
