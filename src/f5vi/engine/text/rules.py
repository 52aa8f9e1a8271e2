"""Our own Vietnamese rewrite rules around the normaliser.

``pre_normalize`` runs before vinorm (or g2p-hamster) and rewrites what vinorm is known to read wrongly
(each rule names the case in a comment); it only produces digits, Vietnamese words and punctuation the
normaliser then reads. ``post_clean`` tidies the normaliser's output into the form the checkpoint was
trained on (lowercase words, punctuation attached to the word before it, one space between words).

Cases are tabled in ``tests/data/normalization_cases.json``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable

from f5vi.engine.text.readings import (
    abbreviations,
    address_parts,
    english_units,
    fractions,
    per_unit,
    ratios,
)

# --- letters and digits ------------------------------------------------------------------------------

DIGIT_WORDS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")

# Vietnamese names of Latin letters, as used when spelling an acronym ("HLV" -> "hát lờ vê").
LETTER_NAMES = {
    "a": "a", "b": "bê", "c": "xê", "d": "dê", "đ": "đê", "e": "e", "f": "ép", "g": "giê", "h": "hát",
    "i": "i", "j": "gi", "k": "ca", "l": "lờ", "m": "mờ", "n": "nờ", "o": "o", "p": "pê", "q": "quy",
    "r": "rờ", "s": "ét", "t": "tê", "u": "u", "v": "vê", "w": "vê kép", "x": "ích", "y": "i", "z": "dét",
}  # fmt: skip

# Acronyms with a conventional reading that is not letter-by-letter Vietnamese spelling.
ACRONYM_READINGS = {
    "USD": "đô la Mỹ", "EUR": "ơ rô", "OK": "ô kê", "VIP": "víp", "CEO": "xi i ô", "MC": "em xi",
    "CD": "xi đi", "DJ": "đi giê", "MV": "em vi", "CV": "xi vi", "PC": "pi xi", "IT": "ai ti",
    "AI": "ây ai", "NATO": "na tô", "ASEAN": "a xê an", "UNESCO": "u nét xcô", "UNICEF": "u ni xép",
    "FIFA": "phi pha", "UEFA": "u ê pha", "APEC": "a pếch", "OPEC": "ô pếch", "NASA": "na sa",
    "COVID": "cô vít", "WTO": "vê kép tê ô", "WHO": "vê kép hát ô", "AIDS": "ết",
}  # fmt: skip

_ROMAN = re.compile(r"^M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})$")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
# words after which a Roman numeral is a number ("Chương IV", "thế kỷ XXI", "Đại hội XIII")
_ROMAN_KEYWORDS = (
    "chương|phần|mục|tập|quyển|khóa|khoá|đại hội|thế kỷ|thế kỉ|hội nghị|kỳ họp|kì họp|quân khu|"
    "quân đoàn|phụ lục|lần thứ|giai đoạn"
)


def roman_to_int(token: str) -> int | None:
    if not token or not _ROMAN.match(token):
        return None
    total = 0
    for i, char in enumerate(token):
        value = _ROMAN_VALUES[char]
        nxt = _ROMAN_VALUES[token[i + 1]] if i + 1 < len(token) else 0
        total += -value if value < nxt else value
    return total


def spell_digits(digits: str) -> str:
    return " ".join(DIGIT_WORDS[int(d)] for d in digits if d.isdigit())


def spell_letters(token: str) -> str:
    return " ".join(LETTER_NAMES.get(c, c) for c in token.lower())


# --- the rules -------------------------------------------------------------------------------------

Rule = Callable[[str], str]

_SCHEME = re.compile(r"https?://", re.IGNORECASE)
_EMAIL = re.compile(r"(?<![\w.])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(
    r"(?<![\w@])(?:https?://\S+|www\.\S+|[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|edu|gov|info|io|vn)(?:\.vn)?(?:/\S*)?)(?![\w@])",
    re.IGNORECASE,
)
_URL_TRAILING = ".,;:!?)]}\"'"
_URL_SEPARATORS = {".": "chấm", "/": "gạch chéo", "@": "a còng", "-": "gạch ngang", "_": "gạch dưới",
                   ":": "hai chấm", "?": "chấm hỏi", "=": "bằng", "&": "và", "#": "thăng", "+": "cộng",
                   "%": "phần trăm", "~": "ngã"}  # fmt: skip
_URL_WORDS = {"www": "vê kép vê kép vê kép", "vn": "vê en", "com": "com", "net": "nét", "org": "o rờ gờ"}
_VOWELS = set("aeiouy")


def _unsayable_short(run: str) -> bool:
    """A run of at most four letters ending in two consonants ("abc", "xyz"; not "tinh", "lang"): spelled."""
    tail = run[-2:]
    return len(run) <= 4 and not (_VOWELS & set(tail)) and tail not in ("ng", "nh", "ch")


def _read_url_part(part: str) -> str:
    """A letters/digits run of a URL or e-mail: a pronounceable word stays, anything else is spelled."""
    words = []
    for run in re.findall(r"[a-zA-Z]+|\d+|[^\W\d_]+", part):
        low = run.lower()
        if low in _URL_WORDS:
            words.append(_URL_WORDS[low])
        elif run.isdigit():
            words.append(spell_digits(run) if len(run) > 4 else run)
        elif len(run) >= 3 and _VOWELS & set(low) and not _unsayable_short(low):
            words.append(low)
        else:
            words.append(spell_letters(run))
    return " ".join(words)


def _read_address(address: str) -> str:
    address = _SCHEME.sub("", address)
    out = []
    for piece in re.split(r"([./@\-_:?=&#+%~])", address):
        if not piece:
            continue
        if piece in _URL_SEPARATORS:
            out.append(_URL_SEPARATORS[piece])
        else:
            out.append(_read_url_part(piece))
    return " ".join(out)


def _addresses(text: str) -> str:
    """E-mail addresses and URLs: vinorm spells every letter with English names ("en giy diu quai")."""

    def repl(match: re.Match[str]) -> str:
        value = match.group(0)
        trail = ""
        while value and value[-1] in _URL_TRAILING:
            trail = value[-1] + trail
            value = value[:-1]
        return _read_address(value) + trail

    text = _EMAIL.sub(repl, text)
    return _URL.sub(repl, text)


_PHONE_PAREN = re.compile(r"\(\s*(0\d{1,3})\s*\)\s*(\d{3,4})[\s.\-]?(\d{3,4})(?!\d)")
_PHONE_GROUPED = re.compile(r"(?<![\d.,])((?:\+84|0)\d{1,3})([\s.\-])(\d{3,4})\2(\d{3,4})(?![\d.,]\d|\d)")


def _phones(text: str) -> str:
    """Phone numbers written in groups: vinorm reads "(028) 3822 1234" and "024.3825.1234" as amounts."""

    def read(groups: Iterable[str]) -> str:
        parts = []
        for group in groups:
            if group.startswith("+"):
                parts.append("cộng " + spell_digits(group[1:]))
            else:
                parts.append(spell_digits(group))
        return ", ".join(parts)

    text = _PHONE_PAREN.sub(lambda m: read(m.groups()), text)
    return _PHONE_GROUPED.sub(lambda m: read((m.group(1), m.group(3), m.group(4))), text)


_MONTH_YEAR = re.compile(r"(?<![\d/.,])(0?[1-9]|1[0-2])/((?:1[89]|20)\d\d)(?![\d/])")
_MONTH_YEAR_CONTEXT = re.compile(r"(?:tháng|quý|quí)\s*$", re.IGNORECASE)


def _month_year(text: str) -> str:
    """Month/year: "3/2024" -> "tháng 3 năm 2024", "quý 3/2024" -> "quý 3 năm 2024".

    vinorm reads "ba trên hai nghìn...".
    """

    def repl(match: re.Match[str]) -> str:
        month, year = int(match.group(1)), match.group(2)
        if _MONTH_YEAR_CONTEXT.search(text[: match.start()]):
            return f"{month} năm {year}"
        return f"tháng {month} năm {year}"

    return _MONTH_YEAR.sub(repl, text)


_RATIO_CONTEXT = re.compile(r"(?:tỉ|tỷ)\s+(?:lệ|số)(?:\s+là)?\s*$", re.IGNORECASE)
_TIME = re.compile(r"(?<![\d:.,])([01]?\d|2[0-4]):([0-5]\d)(?::([0-5]\d))?(?![\d:]|[.,]\d)")


def _times(text: str) -> str:
    """Clock times: "10:30" -> "10 giờ 30 phút"; vinorm reads "mười ba mươi" (without "giờ")."""

    def repl(match: re.Match[str]) -> str:
        if _RATIO_CONTEXT.search(text[: match.start()]):
            return match.group(0)
        hour, minute, second = match.group(1), match.group(2), match.group(3)
        out = f"{int(hour)} giờ"
        if int(minute) or second:
            out += f" {int(minute)} phút"
        if second:
            out += f" {int(second)} giây"
        return out

    return _TIME.sub(repl, text)


_LEADING_ZEROS = re.compile(r"(?<![\d.,:/\-–])0\d+(?!\d|[.,:/\-–]\d)")


def _leading_zeros(text: str) -> str:
    """A whole number written with leading zeros ("007", "00", "0042") is a code, read digit by digit:
    vinorm drops the zeros ("007" -> "bảy") and reads "00" as nothing at all. Decimals, dates, times
    and ranges ("0,5", "02/09", "08:30", "05-07") are left to their own rules."""
    return _LEADING_ZEROS.sub(lambda m: spell_digits(m.group(0)), text)


_NEGATIVE = re.compile(r"(?<![^\s(])[-−–](?=\d)")  # at the start, or after a space or "("


def _negatives(text: str) -> str:
    """Negative numbers: "-5°C" -> "âm 5°C"; vinorm drops the minus sign."""
    return _NEGATIVE.sub("âm ", text)


_RANGE = re.compile(r"(?<![\d.,/\-–])(\d+(?:[.,]\d+)?)\s*[-–]\s*(\d+(?:[.,]\d+)?)(?![\d]|[\-–/.,]\d)")
_DATE_CONTEXT = re.compile(r"(?:ngày|mùng|mồng|hôm|sáng|trưa|chiều|tối|đêm)\s*$", re.IGNORECASE)
_SCORE_CONTEXT = re.compile(
    r"(?:tỉ số|tỷ số|thắng|thua|hòa|hoà|cách biệt|chiến thắng|thất bại|đánh bại)(?:\s+\S+){0,3}\s*$",
    re.IGNORECASE,
)


def _is_score(first: str, second: str) -> bool:
    """``2-1``, ``2-2``: a "range" that does not go up, of small whole numbers, is a score."""
    return first.isdigit() and second.isdigit() and int(second) <= int(first) <= 20


def _ranges(text: str) -> str:
    """Number ranges: "10-20 người" -> "10 đến 20 người".

    vinorm reads "mười hai mươi", or a date ("5 - 7" -> "năm tháng bảy").

    Left alone: dates after "ngày"/"mùng"/...; scores after "thắng"/"tỉ số"/... are read "ba không".
    """

    def repl(match: re.Match[str]) -> str:
        before = text[: match.start()]
        if _DATE_CONTEXT.search(before):
            return match.group(0)
        if _SCORE_CONTEXT.search(before) or _is_score(match.group(1), match.group(2)):
            return f"{match.group(1)} {match.group(2)}"  # "thắng 3 - 0" -> "thắng ba không"
        return f"{match.group(1)} đến {match.group(2)}"

    return _RANGE.sub(repl, text)


_CURRENCY_PREFIX = re.compile(r"([$€£¥])\s?(\d[\d.,]*\d|\d)")
_CURRENCY_SUFFIX = re.compile(r"(\d)\s?([€£¥])")
_CURRENCY_WORDS = {"$": "đô la", "€": "ơ rô", "£": "bảng Anh", "¥": "yên"}


def _currency(text: str) -> str:
    """Currency signs: "$50" -> "50 đô la"; vinorm reads "đô la năm mươi" and drops "€50" entirely."""
    text = _CURRENCY_PREFIX.sub(lambda m: f"{m.group(2)} {_CURRENCY_WORDS[m.group(1)]}", text)
    return _CURRENCY_SUFFIX.sub(lambda m: f"{m.group(1)} {_CURRENCY_WORDS[m.group(2)]}", text)


_SHORTHANDS: tuple[tuple[re.Pattern[str], str], ...] = (
    # "1tr5" -> "1 triệu 5", "35tr" -> "35 triệu": vinorm reads "tê rờ"
    (re.compile(r"(\d)\s?tr(\d)(?!\d)"), r"\1 triệu \2"),
    (re.compile(r"(\d)\s?tr\b"), r"\1 triệu"),
    # "5k" -> "5 nghìn": vinorm reads "năm ca"
    (re.compile(r"(\d)\s?k\b"), r"\1 nghìn"),
    # "1m75" -> "1 mét 75": vinorm reads "một m bảy mươi lăm"
    (re.compile(r"\b(\d)m(\d\d)\b"), r"\1 mét \2"),
    # "5G" -> "5 gờ": vinorm reads "năm giờ"
    (re.compile(r"\b([2-6])G\b"), r"\1 gờ"),
    # data rates and sizes: vinorm leaves "mbps", reads "TB" as "thông báo" and "KB" as "kí lô bít"
    (re.compile(r"(\d)\s?([kK])bps\b"), r"\1 ki lô bít trên giây"),
    (re.compile(r"(\d)\s?Mbps\b"), r"\1 mê ga bít trên giây"),
    (re.compile(r"(\d)\s?Gbps\b"), r"\1 ghi ga bít trên giây"),
    (re.compile(r"(\d)\s?KB\b"), r"\1 ki lô bai"),
    (re.compile(r"(\d)\s?MB\b"), r"\1 mê ga bai"),
    (re.compile(r"(\d)\s?GB\b"), r"\1 ghi ga bai"),
    (re.compile(r"(\d)\s?TB\b"), r"\1 tê ra bai"),
    # "220V" -> "220 vôn": vinorm reads "vê"
    (re.compile(r"(\d)\s?V\b"), r"\1 vôn"),
    # "m²" -> "m2" (vinorm knows m2 but drops the superscript)
    (re.compile(r"(?<=[a-zA-Z])²"), "2"),
    (re.compile(r"(?<=[a-zA-Z])³"), "3"),
    # "24/7" -> "24 trên 7": vinorm leaves the slash
    (re.compile(r"\b24\s?/\s?7\b"), "24 trên 7"),
    # "#1" -> "số 1": vinorm drops the sign
    (re.compile(r"#(?=\d)"), "số "),
    # honorifics vinorm spells letter by letter ("mờ rờ")
    (re.compile(r"\bMrs\.?(?=\s)"), "bà"),
    (re.compile(r"\bMr\.?(?=\s)"), "ông"),
    (re.compile(r"\bMs\.?(?=\s)"), "cô"),
    (re.compile(r"\bDr\.?(?=\s)"), "tiến sĩ"),
    # "ok"/"Ok" -> "ô kê": vinorm keeps "ok" (all-caps "OK" is in ACRONYM_READINGS)
    (re.compile(r"\b[Oo]k\b"), "ô kê"),
    # "v.v." -> "vân vân": vinorm reads "v . v ."
    (re.compile(r"\b[vV]\.?\s?[vV]\.(?!\w)|\bvv\.(?!\w)"), "vân vân"),
)


def _shorthands(text: str) -> str:
    for pattern, replacement in _SHORTHANDS:
        text = pattern.sub(replacement, text)
    return text


_ROMAN_AFTER_KEYWORD = re.compile(rf"\b((?i:{_ROMAN_KEYWORDS}))\s+([IVX])\b")
_ROMAN_IVX = re.compile(r"(?<![\w.&-])([IVX]{2,})(?![\w&-])")


def _roman_numerals(text: str) -> str:
    """Roman numerals -> digits: vinorm converts some ("thế kỷ XXI") but not others ("mục I", "Thế chiến II").

    Two or more of I/V/X forming a valid numeral are converted anywhere; a single I/V/X only after a word
    such as "chương" or "mục" (elsewhere it is a letter: "ông X"). C, D, L, M are left as letters ("hạng C").
    """

    def keyword(match: re.Match[str]) -> str:
        return f"{match.group(1)} {roman_to_int(match.group(2))}"

    def standalone(match: re.Match[str]) -> str:
        value = roman_to_int(match.group(1))
        return match.group(0) if value is None else str(value)

    text = _ROMAN_AFTER_KEYWORD.sub(keyword, text)
    return _ROMAN_IVX.sub(standalone, text)


_FORMULA_LETTERS = {"O": "ô"}  # "H2O" is read "hát hai ô"
_FORMULA = re.compile(r"(?<!\w)((?:[A-Z][a-z]?\d*){2,})(?!\w)")


def _formulas(text: str) -> str:
    """Chemical formulas and similar codes "H2O" -> "hát 2 ô", "MP3" -> "mờ pê 3": vinorm reads "h hai o"."""

    def repl(match: re.Match[str]) -> str:
        token = match.group(1)
        if not any(c.isdigit() for c in token):
            return token
        parts = re.findall(r"[A-Z][a-z]?|\d+", token)
        return " ".join(p if p.isdigit() else _FORMULA_LETTERS.get(p, spell_letters(p)) for p in parts)

    return _FORMULA.sub(repl, text)


# not part of "TP.HCM" or "GD&ĐT"
_CAPS_TOKEN = re.compile(r"(?<![\w.&°])([A-ZĐ]{1,6})(?![\w&]|\.\w)")


_CAPS_VIETNAMESE_WORD = re.compile(r"(?<!\w)(?=\w*[^\W\dA-ZĐa-z_])[^\W\d_a-z]{2,}(?!\w)")


def _shouted(text: str) -> bool:
    """Text written in capitals ("XIN CHÀO", "CHÚ Ý: ..."): its words are words, not acronyms."""
    for match in _CAPS_VIETNAMESE_WORD.finditer(text):
        if match.group(0).isupper():
            return True  # an all-caps word with a Vietnamese accented capital
    letters = [c for c in text if c.isalpha()]
    upper = sum(1 for c in letters if c.isupper())
    return len(letters) >= 8 and upper / len(letters) > 0.6


def make_acronym_rule(known_acronyms: frozenset[str]) -> Rule:
    """Upper-case tokens: conventional readings, else Vietnamese letter names ("ATM" -> "a tê mờ").

    With vinorm's ``-unknown`` an unknown acronym would be lowercased into a pseudo-word ("who").
    Left to vinorm: acronyms in its dictionaries (``known_acronyms``: "UBND", "THPT", "VNĐ"...), units after
    a number, words of 5+ letters not in our table (probably pronounced as words), and whole sentences in
    capitals.
    """

    def rule(text: str) -> str:
        if _shouted(text):
            return text

        def repl(match: re.Match[str]) -> str:
            token = match.group(1)
            before = text[: match.start()].rstrip()
            if token in ACRONYM_READINGS:
                return ACRONYM_READINGS[token]
            if token.lower() in known_acronyms:
                return token
            if re.search(r"\d$", before):
                return token  # a unit after a number ("5 MW")
            if len(token) >= 5:
                return token
            return spell_letters(token)

        return _CAPS_TOKEN.sub(repl, text)

    return rule


_ELLIPSIS = re.compile(r"\s*(?:\.{3,}|…)+")
_QUOTES = re.compile(r"[\"“”„«»‘’‚`´]|(?<!\w)'|'(?!\w)")
_BRACKETS_OPEN = re.compile(r"\s*[(\[{]\s*")
_BRACKETS_CLOSE = re.compile(r"\s*[)\]}]")
_DASH_SEPARATOR = re.compile(r"\s+[-–—]+\s+")


def _punctuation(text: str) -> str:
    """Ellipses, brackets and spaced dashes become commas (pauses); quotes go (vinorm drops them too)."""

    def ellipsis(match: re.Match[str]) -> str:
        rest = text[match.end() :]
        return "." if not rest.strip() or rest.lstrip()[:1] in "\n" else ","

    text = _ELLIPSIS.sub(ellipsis, text)
    text = _QUOTES.sub("", text)
    text = _BRACKETS_OPEN.sub(", ", text)
    text = _BRACKETS_CLOSE.sub(",", text)
    return _DASH_SEPARATOR.sub(", ", text)


def pre_normalize(text: str, known_acronyms: frozenset[str] = frozenset()) -> str:
    """Apply our rewrites to one line of NFC text, before the normaliser."""
    for rule in (
        _addresses,
        _phones,
        abbreviations,
        address_parts,
        ratios,
        per_unit,
        fractions,
        english_units,
        _month_year,
        _times,
        _currency,
        _shorthands,
        _leading_zeros,
        _negatives,
        _ranges,
        _roman_numerals,
        _formulas,
        make_acronym_rule(known_acronyms),
        _punctuation,
    ):
        text = rule(text)
    return text


# --- after the normaliser ----------------------------------------------------------------------------

PUNCTUATION = ",.!?:;"
_STRENGTH = {"?": 6, "!": 5, ".": 4, ":": 3, ";": 2, ",": 1}
_SLASH = re.compile(r"\s*/\s*")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.!?:;])")
_PUNCT_RUN = re.compile(r"[,.!?:;](?:\s*[,.!?:;])+")
_LEADING_PUNCT = re.compile(r"^[\s,.!?:;\-]+")
_STRAY_DASH = re.compile(r"(?<!\w)[-–—]+|[-–—]+(?!\w)")


def _strongest(run: str) -> str:
    marks = [c for c in run if c in _STRENGTH]
    return max(marks, key=lambda c: _STRENGTH[c])


def _is_sayable_char(char: str) -> bool:
    if char.isspace() or char in PUNCTUATION or char in "-'":
        return True
    category = unicodedata.category(char)
    return category[0] in ("L", "N", "M")


# April is "tháng tư", not "tháng bốn" (vinorm), unless it counts months ("tháng bốn ngày")
_APRIL = re.compile(r"\b([Tt]háng) bốn\b(?!\s+(?:ngày|tuần|giờ|phút|giây))")


def post_clean(line: str) -> tuple[str, dict[str, int]]:
    """Tidy one normalised line. Returns the text and the symbols it removed (with counts)."""
    removed: dict[str, int] = {}
    line = _APRIL.sub(r"\1 tư", line)
    line = _SLASH.sub(" trên ", line)
    line = _QUOTES.sub("", line)
    kept = []
    for char in line:
        if _is_sayable_char(char):
            kept.append(char)
        else:
            if not unicodedata.category(char).startswith(("M", "C")) and char not in "\ufe0f\u200d":
                removed[char] = removed.get(char, 0) + 1
            kept.append(" ")
    line = "".join(kept)
    line = _STRAY_DASH.sub(" ", line)
    line = _SPACE_BEFORE_PUNCT.sub(r"\1", line)
    line = _PUNCT_RUN.sub(lambda m: _strongest(m.group(0)), line)
    line = _LEADING_PUNCT.sub("", line)
    line = " ".join(line.split())
    return line, removed


def end_sentence(line: str) -> str:
    """Make a line end like a sentence: a final ``, ; :`` becomes ``.``, a missing mark is added."""
    if not line:
        return line
    if line[-1] in ".!?":
        return line
    if line[-1] in ",;:":
        return line[:-1] + "."
    return line + "."
