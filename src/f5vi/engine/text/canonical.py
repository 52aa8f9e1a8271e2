"""One canonical form for comparing what the model was told to say with what ASR heard.

Verification (:mod:`f5vi.engine.verify`) and ``f5vi eval`` compare the text a chunk was given (already
normalised: numbers as words, lowercase) with a PhoWhisper transcript (digits, capitals, punctuation,
either tone placement). Both go through :func:`canonical_words`, so a difference that is only a
spelling convention costs nothing:

- Unicode: NFC and NFD input give the same result (everything is decomposed, then rebuilt);
- case: lowercased (``casefold``);
- punctuation and spacing: removed (CER compares the letters; WER the syllables);
- tone placement: the tone mark is taken off the vowel it sits on and written once after the syllable,
  so old and new placement agree ("hoà"/"hòa", "thuý"/"thúy", "khoẻ"/"khỏe");
- "y"/"i" at the end of a syllable after a consonant (and "qu"): "kỹ"/"kĩ", "quý"/"quí", "lý"/"lí",
  "mỹ"/"mĩ"; "uy" after other consonants ("thuý", "tuy") is a vowel cluster and stays;
- digits are read as Vietnamese words ("25" -> "hai mươi lăm", "1.000.000" -> "một triệu", "3,5" ->
  "ba phẩy năm", "%" -> "phần trăm"), the way the normaliser verbalised the model's text;
- regional and reading variants of number words fold to one form: "ngàn"/"nghìn", "lẻ"/"linh",
  "lăm"/"năm", "mốt"/"một", "tư"/"bốn".

Both sides are folded the same way, so a fold can only make two different words equal, never two equal
words different; the folds are chosen where that costs nothing measurable for a check of "were the
right words said".
"""

from __future__ import annotations

import re
import unicodedata

TONE_MARKS = {
    "\u0300": "2",  # huyền (grave)
    "\u0301": "1",  # sắc (acute)
    "\u0309": "3",  # hỏi (hook above)
    "\u0303": "4",  # ngã (tilde)
    "\u0323": "5",  # nặng (dot below)
}
"""Combining tone marks, written as a digit after the syllable (digits never survive otherwise)."""

_WORD_FOLDS = {
    "ngan2": "nghin2",  # ngàn (south) = nghìn (north)
    "le3": "linh",  # một trăm lẻ năm = một trăm linh năm
    "lăm": "năm",  # hai mươi lăm: "lăm" is "năm" after a ten
    "môt1": "môt5",  # hai mươi mốt: "mốt" is "một" after a ten
    "tư": "bôn1",  # hai mươi tư: "tư" is "bốn" after a ten
}
"""Number-word variants, in canonical syllable form (base letters + tone digit)."""

_DIGITS = ["không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín"]
_NUMBER = re.compile(r"\d{1,3}(?:\.\d{3})+(?!\d)|\d+(?:,\d+)?")
_VOWELS = set("aăâeêioôơuưy")
_SYLLABLE = re.compile(r"[^\W\d_]+|\d", re.UNICODE)


def _read_below_thousand(n: int, full: bool) -> list[str]:
    """0..999; ``full`` writes a hundreds group completely ("không trăm linh năm")."""
    hundreds, rest = divmod(n, 100)
    tens, units = divmod(rest, 10)
    words: list[str] = []
    if hundreds or full:
        words += [_DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units:
            if words:
                words.append("linh")
            words.append(_DIGITS[units])
        return words
    words += ["mười"] if tens == 1 else [_DIGITS[tens], "mươi"]
    if units == 1 and tens > 1:
        words.append("mốt")
    elif units == 5:
        words.append("lăm")
    elif units == 4 and tens > 1:
        words.append("tư")
    elif units:
        words.append(_DIGITS[units])
    return words


def read_integer(n: int) -> list[str]:
    """A non-negative integer in Vietnamese words, as vinorm reads it.

    "2024" -> "hai nghìn không trăm hai mươi tư"."""
    if n == 0:
        return ["không"]
    scales = ["", "nghìn", "triệu", "tỷ"]
    groups: list[int] = []
    while n:
        n, group = divmod(n, 1000)
        groups.append(group)
    if len(groups) > len(scales):  # beyond tỷ: digit by digit (rare in speech; stays comparable)
        return [_DIGITS[int(d)] for d in str(sum(g * 1000**i for i, g in enumerate(groups)))]
    words: list[str] = []
    top = len(groups) - 1
    for i in range(top, -1, -1):
        group = groups[i]
        if group == 0:
            continue
        words += _read_below_thousand(group, full=i < top)
        if scales[i]:
            words.append(scales[i])
    return words


def verbalize_numbers(text: str) -> str:
    """Digits in ``text`` as words: integers, ``1.000.000`` thousands separators, ``3,5`` decimals, ``%``."""

    def spoken(match: re.Match[str]) -> str:
        token = match.group(0)
        if "," in token:
            whole, frac = token.split(",", 1)
            words = [*read_integer(int(whole)), "phẩy"]
            words += read_integer(int(frac)) if not frac.startswith("0") else [_DIGITS[int(d)] for d in frac]
        elif len(token) > 1 and token.startswith("0"):
            words = [_DIGITS[int(d)] for d in token]  # "007": digit by digit, as the normaliser reads it
        else:
            words = read_integer(int(token.replace(".", "")))
        return " " + " ".join(words) + " "

    return _NUMBER.sub(spoken, text).replace("%", " phần trăm ")


def _syllable(word: str) -> str:
    """One lowercased NFC word -> base letters (vowel quality marks kept) + its tone digit, folded."""
    decomposed = unicodedata.normalize("NFD", word)
    tone = ""
    kept: list[str] = []
    for char in decomposed:
        if char in TONE_MARKS:
            tone = TONE_MARKS[char]
        else:
            kept.append(char)
    base = unicodedata.normalize("NFC", "".join(kept))
    if base.endswith("y") and len(base) >= 2:
        before = base[-2]
        if before not in _VOWELS or base[-3:-1] == "qu" or base == "quy":
            base = base[:-1] + "i"  # kỹ/kĩ, lý/lí, quý/quí; "uy" of thuý/tuy is a vowel cluster
    elif base == "y":
        base = "i"
    syllable = base + tone
    return _WORD_FOLDS.get(syllable, syllable)


def canonical_words(text: str) -> list[str]:
    """The canonical syllables of ``text`` (see the module docstring)."""
    text = unicodedata.normalize("NFC", text).casefold()
    text = verbalize_numbers(text)
    return [_syllable(w) for w in _SYLLABLE.findall(text)]


def canonical(text: str) -> str:
    """The canonical letters of ``text``: :func:`canonical_words` without separators (what CER counts)."""
    return "".join(canonical_words(text))


def edit_distance(reference: list[str] | str, hypothesis: list[str] | str) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Edits between the canonical letters over the reference's count (0 is equal; can exceed 1)."""
    ref, hyp = canonical(reference), canonical(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Edits between the canonical syllables over the reference's syllable count."""
    ref, hyp = canonical_words(reference), canonical_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)
