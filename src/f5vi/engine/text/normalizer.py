"""Text front end: turn user text into what the Vietnamese checkpoint was trained on.

The checkpoint's data was lowercased with punctuation kept, and numbers, dates, units... were written
as words. :func:`normalize_text` does, in order:

1. Unicode NFC (decomposed accents are not in the vocab) and line-break cleanup;
2. our rewrite rules for cases vinorm reads wrongly (:mod:`f5vi.engine.text.rules`);
3. the normaliser: vinorm 2.0.7's binary through :class:`~f5vi.engine.text.vinorm_runner.VinormRunner`
   (``-punc -unknown -lower``, see :class:`~f5vi.engine.text.vinorm_runner.VinormFlags` for why ``-punc``);
   if the binary is missing, fails or times out, g2p-hamster 0.2.8 takes over and the result says so
   (``normalizer_used`` and a warning) — there is no silent raw-text path;
4. cleanup of the normaliser's artifacts (" .", doubled marks, quotes, stray symbols), one sentence end
   per input line, lowercase when the vocab has no uppercase letters;
5. characters the vocab lacks are reported as warnings.

Empty text, or text with nothing sayable left, raises :class:`~f5vi.engine.errors.InvalidTextError`.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from f5vi.engine.errors import InvalidTextError
from f5vi.engine.text.rules import end_sentence, post_clean, pre_normalize
from f5vi.engine.text.vinorm_runner import VinormError, VinormFlags, VinormRunner
from f5vi.engine.text.vocab import Vocab

log = logging.getLogger(__name__)

NormalizerName = Literal["vinorm", "hamster", "none"]


@dataclass(frozen=True)
class NormalizedText:
    text: str
    normalizer_used: str
    """Which normaliser produced ``text``: vinorm, hamster (chosen, or the fallback) or none."""
    warnings: tuple[str, ...] = ()


# --- normaliser back ends ----------------------------------------------------------------------------


def _hamster_normalize() -> Callable[[str], str]:
    from g2p_hamster.t0.pipeline import normalize  # imported lazily: ~0.1 s, and only for the fallback

    def run(line: str) -> str:
        return str(normalize(line)["read_string"])

    return run


def _run_hamster(lines: list[str]) -> list[str]:
    run = _hamster_normalize()
    return [run(line) if line.strip() else "" for line in lines]


def _run_hamster_reported(lines: list[str], warnings: list[str]) -> tuple[list[str], str]:
    """g2p-hamster, or — if it fails too — our rewrites alone, with a warning either way it degrades."""
    try:
        return _run_hamster(lines), "hamster"
    except Exception as exc:  # a broken optional back end must not take the service down
        log.error("g2p-hamster failed (%s); text is read with our rewrite rules only", exc)
        warnings.append(f"g2p-hamster normaliser failed ({exc}); numbers and symbols may be read as written")
        return lines, "none"


# --- helpers ---------------------------------------------------------------------------------------

_HANDLED_SYMBOLS = set("%$€£¥°&+=<>#@*/\\^~|±×÷²³")


def _unsayable_input(text: str) -> dict[str, int]:
    """Symbols (emoji, pictographs) and characters of scripts we cannot read, which get dropped."""
    found: dict[str, int] = {}
    for char in text:
        if char in _HANDLED_SYMBOLS or char.isspace():
            continue
        category = unicodedata.category(char)
        drop = category in ("So", "Co", "Cn", "Sk") or (
            category == "Lo" and not unicodedata.name(char, "").startswith("LATIN")
        )
        if drop:
            found[char] = found.get(char, 0) + 1
    return found


def _format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{c!r}×{n}" for c, n in counts.items())


def _has_sayable(text: str) -> bool:
    return any(c.isalnum() for c in text)


def can_be_read_aloud(text: str) -> bool:
    """Could the normaliser find anything to say in ``text``? Cheap (no normaliser run), for submit time.

    False only when every character is certainly dropped: controls (NUL), format characters
    (zero-width), combining marks on nothing, emoji and other symbols, scripts we cannot read,
    punctuation. A letter, a digit or a symbol the rules read out (``%``, ``$``, ...) may be said, so
    the text goes on to the normaliser, which has the last word.
    """
    for char in unicodedata.normalize("NFC", text):
        if char in _HANDLED_SYMBOLS:
            return True
        if char.isalnum() and not _unsayable_input(char):
            return True
    return False


def _decide_lowercase(vocab: Vocab | None, lowercase: bool | None) -> bool:
    if lowercase is not None:
        return lowercase
    return vocab is None or not vocab.has_uppercase


# --- public API ------------------------------------------------------------------------------------


def normalize_text(
    text: str,
    *,
    normalizer: NormalizerName = "vinorm",
    vocab: Vocab | None = None,
    lowercase: bool | None = None,
    vinorm: VinormRunner | None = None,
) -> NormalizedText:
    """Normalise ``text`` for synthesis (see the module docstring for the steps).

    ``lowercase=None`` lowercases unless the vocab has every uppercase Vietnamese letter (with no vocab we
    lowercase, as the Vietnamese checkpoint was trained). ``vinorm`` lets a caller supply its own runner
    (for example one pointing at another binary).
    """
    return normalize_texts([text], normalizer=normalizer, vocab=vocab, lowercase=lowercase, vinorm=vinorm)[0]


class TextNotSayableError(InvalidTextError):
    """:class:`InvalidTextError` for one text of :func:`normalize_texts`; ``index`` says which."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


@dataclass
class _Prepared:
    """A text ready for the normaliser: its non-empty lines, what was dropped, what it warned."""

    lines: list[str]
    dropped: dict[str, int]
    warnings: list[str]


def normalize_texts(
    texts: list[str],
    *,
    normalizer: NormalizerName = "vinorm",
    vocab: Vocab | None = None,
    lowercase: bool | None = None,
    vinorm: VinormRunner | None = None,
) -> list[NormalizedText]:
    """:func:`normalize_text` for several texts with ONE normaliser run for all of them.

    A text with ``[voice]`` tags is one text per voice part plus each voice's transcript; starting the
    vinorm binary once per part cost 150x (1000 tags: 60 s instead of 0.4 s) and a time-out once per
    part. The binary reads line by line, so the parts' lines go through it together and are split back.
    Raises :class:`TextNotSayableError` (an ``InvalidTextError`` with the text's ``index``).
    """
    if normalizer not in ("vinorm", "hamster", "none"):
        raise ValueError(f"unknown normalizer {normalizer!r}")
    lower = _decide_lowercase(vocab, lowercase)
    runner: VinormRunner | None = None
    prepared: list[_Prepared] = []
    for index, text in enumerate(texts):
        if not text or not text.strip():
            raise TextNotSayableError("text is empty", index)
        if normalizer != "none" and runner is None:
            runner = vinorm or VinormRunner()  # callers that normalise often pass their own runner
        prepared.append(_prepare(text, normalizer, runner))
    used: str = normalizer
    shared: list[str] = []  # warnings of the normaliser run, for every text
    raw: list[list[str]] = [p.lines for p in prepared]
    all_lines = [line for p in prepared for line in p.lines]
    if normalizer != "none" and all_lines:
        assert runner is not None
        if normalizer == "vinorm":
            try:
                flat = _vinorm_lines(runner, all_lines, VinormFlags(lower=lower), joined=len(texts) > 1)
            except VinormError as exc:
                log.warning("vinorm failed (%s); falling back to g2p-hamster", exc)
                shared.append(f"vinorm normaliser unavailable ({exc}); used the g2p-hamster fallback")
                flat, used = _run_hamster_reported(all_lines, shared)
        else:
            flat, used = _run_hamster_reported(all_lines, shared)
        raw, position = [], 0
        for p in prepared:
            raw.append(flat[position : position + len(p.lines)])
            position += len(p.lines)
    return [
        _finish(index, p, lines, normalizer, used, shared, lower, vocab)
        for index, (p, lines) in enumerate(zip(prepared, raw, strict=True))
    ]


PART_SEPARATOR = "zzfvisepzz"
"""A word vinorm passes through as it is (lowercase letters only), between the parts of a tagged text."""


def _vinorm_lines(runner: VinormRunner, lines: list[str], flags: VinormFlags, *, joined: bool) -> list[str]:
    """One vinorm run for ``lines``; one output line per input line.

    The binary costs about 10 ms per input line, so the many short parts of a tagged text (``joined``)
    go through as ONE line with :data:`PART_SEPARATOR` between them and are split back; each part reads
    as it does alone (tested). If a part holds the separator or the split does not come out even, the
    parts go line by line instead.
    """
    if joined and len(lines) > 1 and not any(PART_SEPARATOR in line.lower() for line in lines):
        output = runner.run(f" {PART_SEPARATOR} ".join(lines), flags)
        pieces = [piece.strip() for piece in output[0].split(PART_SEPARATOR)] if output else []
        if len(pieces) == len(lines):
            return pieces
        log.warning("vinorm changed the part separator; normalising the parts line by line")
    output = runner.run("\n".join(lines), flags)
    flat = output[: len(lines)]
    if len(flat) != len(lines):
        raise VinormError(f"vinorm returned {len(flat)} lines for {len(lines)}")
    return flat


def _prepare(text: str, normalizer: str, runner: VinormRunner | None) -> _Prepared:
    """NFC, line breaks, spaces; then (with a normaliser) the unsayable report and our rewrite rules."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    text = "".join(" " if unicodedata.category(c) == "Zs" or c == "\t" else c for c in text)
    lines = [line.strip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    if normalizer == "none":
        return _Prepared([" ".join(line.split()) for line in lines], {}, [])
    assert runner is not None
    warnings: list[str] = []
    dropped = _unsayable_input(text)
    if dropped:
        warnings.append(
            f"ignored {sum(dropped.values())} character(s) that cannot be read aloud: "
            f"{_format_counts(dropped)}"
        )
    prepared = [pre_normalize(line, runner.acronyms()) for line in lines]
    return _Prepared([line for line in prepared if line.strip()], dropped, warnings)


def _finish(
    index: int,
    prepared: _Prepared,
    raw_lines: list[str],
    normalizer: str,
    used: str,
    shared: list[str],
    lower: bool,
    vocab: Vocab | None,
) -> NormalizedText:
    """Clean the normaliser's output of one text, check it can be said, report what it lacks."""
    warnings = list(prepared.warnings)
    if normalizer == "none":
        out_lines = raw_lines
        text_used = "none"
    else:
        warnings.extend(shared)
        text_used = used
        out_lines = []
        removed: dict[str, int] = {}
        for raw in raw_lines:
            cleaned, gone = post_clean(raw)
            for char, count in gone.items():
                if char not in prepared.dropped:
                    removed[char] = removed.get(char, 0) + count
            if cleaned:
                out_lines.append(end_sentence(cleaned))
        if removed:
            warnings.append(
                f"removed {sum(removed.values())} symbol(s) the normaliser left unread: "
                f"{_format_counts(removed)}"
            )
    result = " ".join(line for line in out_lines if line)
    if lower:
        result = result.lower()
    if not _has_sayable(result):
        raise TextNotSayableError("text has nothing that can be read aloud after normalisation", index)
    if re.search(r"\d", result) and normalizer != "none":
        warnings.append("some digits were not turned into words and may be misread")
    if vocab is not None:
        report = vocab.check(result)
        warnings.extend(report.warnings())
        sayable = [c for c in result if c.isalnum()]
        if all(c not in vocab for c in sayable):
            raise TextNotSayableError("no character of the text is in the model's vocabulary", index)
    return NormalizedText(text=result, normalizer_used=text_used, warnings=tuple(warnings))


def prepare_ref_text(ref_text: str) -> str:
    """Upstream's reference-transcript rule: end it with ". " (or a space after a final ".").

    The result is what upstream's chunk budget (:func:`~.chunking.max_chars_for_reference`) sees.
    """
    text = ref_text.strip()
    if not text:
        raise InvalidTextError("reference transcript is empty")
    if text.endswith(". ") or text.endswith("。"):
        return text
    return text + " " if text.endswith(".") else text + ". "


def ref_text_for_model(prepared_ref_text: str) -> str:
    """The reference string put in front of every chunk: one more space after a one-byte last character.

    Upstream ``infer_batch_process`` does this, so "… tôi. " becomes "… tôi.  ". Use the result both for
    the token sequence (``ref + chunk``) and for :func:`f5vi.engine.text.chunking.estimate_duration_frames`.
    """
    if prepared_ref_text and len(prepared_ref_text[-1].encode("utf-8")) == 1:
        return prepared_ref_text + " "
    return prepared_ref_text


def prepare_reference_text(ref_text: str) -> str:
    """The model-ready reference string: :func:`prepare_ref_text` then :func:`ref_text_for_model`.

    Concatenate it in front of every chunk and pass it to
    :func:`~f5vi.engine.text.chunking.estimate_duration_frames`. (Upstream computes the chunk budget from the
    string *before* the trailing space; pass :func:`prepare_ref_text`'s result to
    :func:`~.chunking.max_chars_for_reference` for byte-exact parity — it differs by one byte.)
    """
    return ref_text_for_model(prepare_ref_text(ref_text))
