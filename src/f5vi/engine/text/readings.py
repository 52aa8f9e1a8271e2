"""Rewrite rules for the classes vinorm reads worst (issue 21), run by :func:`~.rules.pre_normalize`.

- abbreviations from the shipped data files (:data:`DATA_DIR`, the lexicon file format): Vietnamese
  institutional abbreviations and titles written with dots (``PGS.TS.``, ``TN&MT``), and English
  acronyms as Vietnamese readers say them (``BBC`` -> "bi bi xi", ``LAN`` -> "lan");
- fractions after a quantity word (``chiếm 1/4`` -> "chiếm một phần tư") and Unicode fractions;
- ratios after "tỉ lệ" (``1:500`` -> "một trên năm trăm");
- a percentage or a word per unit (``7%/năm`` -> "bảy phần trăm một năm"; vinorm drops "phần trăm");
- units written as English words after a number (``10 pounds`` -> "mười pao");
- sports scores are handled by :func:`~.rules._ranges` (a "range" that goes down is a score).

Each rule only produces digits, Vietnamese words and punctuation for the normaliser; the cases are in
``tests/data/normalization_cases.json``.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

from f5vi.engine.text.lexicon import Lexicon, parse_lexicon_text
from f5vi.engine.text.spans import SourcePiece, join_pieces

DATA_FILES = ("abbreviations.lexicon", "english.lexicon")
"""Shipped with the package in ``f5vi/engine/text/data/``; anyone can add lines (format: docs/text.md)."""


@functools.cache
def data_lexicon() -> Lexicon:
    """The shipped abbreviation lexicons, parsed once (immutable afterwards)."""
    entries = []
    for name in DATA_FILES:
        text = resources.files("f5vi.engine.text").joinpath("data", name).read_text(encoding="utf-8")
        entries.extend(parse_lexicon_text(text, f"f5vi/engine/text/data/{name}", "server"))
    return Lexicon(entries)


def abbreviations(text: str) -> str:
    pieces, _ = data_lexicon().apply([SourcePiece(text, 0, len(text))])
    return join_pieces(pieces)


# --- fractions and ratios ----------------------------------------------------------------------------

_UNICODE_FRACTIONS = {"½": (1, 2), "⅓": (1, 3), "⅔": (2, 3), "¼": (1, 4), "¾": (3, 4), "⅕": (1, 5),
                      "⅛": (1, 8), "⅜": (3, 8), "⅝": (5, 8), "⅞": (7, 8)}  # fmt: skip
_QUANTITY_BEFORE = r"(?:khoảng|chiếm|gần|hơn|bằng|mất|chỉ|cỡ|quá|non|ngót)"
_FRACTION = re.compile(rf"\b({_QUANTITY_BEFORE}\s+)(\d{{1,2}})/(\d{{1,3}})(?![\d/.,]\d|\d)", re.IGNORECASE)
_RATIO = re.compile(
    r"((?:tỉ|tỷ)\s+lệ(?:\s+là)?\s+)(\d+(?:[.,]\d+)?)\s*:\s*(\d+(?:[.,]\d+)?)(?![\d:])", re.IGNORECASE
)


def _fraction_words(numerator: int, denominator: int) -> str:
    if denominator == 4:
        return f"{numerator} phần tư"
    return f"{numerator} phần {denominator}"


def fractions(text: str) -> str:
    """``chiếm 1/4`` -> "chiếm 1 phần tư", ``½`` -> "1 phần 2". A bare ``3/4`` may be a date (3 April)
    or a number ("ba trên bốn"), so only a quantity word before it makes it a fraction."""

    def repl(match: re.Match[str]) -> str:
        numerator, denominator = int(match.group(2)), int(match.group(3))
        if not 0 < numerator < denominator or denominator > 100:
            return match.group(0)
        return match.group(1) + _fraction_words(numerator, denominator)

    text = _FRACTION.sub(repl, text)
    return _UNICODE_FRACTION.sub(_unicode_fraction, text)


_UNICODE_FRACTION = re.compile(r"(\d)?\s?([" + "".join(_UNICODE_FRACTIONS) + "])")


def _unicode_fraction(match: re.Match[str]) -> str:
    """``½`` -> "1 phần 2", ``1½`` -> "1 và 1 phần 2"."""
    numerator, denominator = _UNICODE_FRACTIONS[match.group(2)]
    whole = f"{match.group(1)} và " if match.group(1) else ""
    return whole + _fraction_words(numerator, denominator)


def ratios(text: str) -> str:
    """``tỉ lệ 3:2`` -> "tỉ lệ 3 trên 2" (vinorm reads "ba hai", and ``1:500`` "một năm trăm")."""
    return _RATIO.sub(lambda m: f"{m.group(1)}{m.group(2)} trên {m.group(3)}", text)


# --- per unit --------------------------------------------------------------------------------------

_PERCENT_PER = re.compile(r"(\d)\s?%\s?/\s?([^\W\d_]+)")
_AREA_UNITS = {"km2": "ki lô mét vuông", "m2": "mét vuông", "m3": "mét khối", "ha": "héc ta"}
_WORD_PER_UNIT = re.compile(r"(?<=[^\W\d_])\s?/\s?(km2|m2|m3|ha)\b")


_ADDRESS_PARTS = re.compile(r"\b([QP])\.\s?(?=\d)")
_SPACED_DONG = re.compile(r"(\d) đ\s?/\s?")


def address_parts(text: str) -> str:
    """``Q. 1``, ``P.3`` -> "quận 1", "phường 3" (vinorm reads "quy.", "pê."); only before a number."""
    return _ADDRESS_PARTS.sub(lambda m: "quận " if m.group(1) == "Q" else "phường ", text)


def per_unit(text: str) -> str:
    """``7%/năm`` -> "7 phần trăm một năm" (vinorm drops the percent); ``người/km2`` ->
    "người trên ki lô mét vuông" (vinorm garbles a Vietnamese word before a slash and a unit)."""
    text = _PERCENT_PER.sub(r"\1 phần trăm một \2", text)
    text = _SPACED_DONG.sub(r"\1 đồng trên ", text)  # "50.000 đ/người": vinorm garbles "người" after "/"
    return _WORD_PER_UNIT.sub(lambda m: " trên " + _AREA_UNITS[m.group(1)], text)


# --- units as English words --------------------------------------------------------------------------

_ENGLISH_UNITS = {
    "kilograms": "ki lô gam", "kilogram": "ki lô gam", "grams": "gam", "gram": "gam",
    "kilometers": "ki lô mét", "kilometer": "ki lô mét", "kilometres": "ki lô mét", "kilometre": "ki lô mét",
    "centimeters": "xen ti mét", "centimeter": "xen ti mét", "millimeters": "mi li mét",
    "millimeter": "mi li mét", "meters": "mét", "meter": "mét", "metres": "mét", "metre": "mét",
    "miles": "dặm", "mile": "dặm", "inches": "inch", "inch": "inch", "feet": "phít", "foot": "phít",
    "yards": "i át", "yard": "i át", "pounds": "pao", "pound": "pao", "ounces": "ao xơ", "ounce": "ao xơ",
    "liters": "lít", "liter": "lít", "litres": "lít", "litre": "lít", "milliliters": "mi li lít",
    "gallons": "ga lông", "gallon": "ga lông", "tons": "tấn", "tonnes": "tấn", "ton": "tấn",
    "hours": "giờ", "hour": "giờ", "minutes": "phút", "minute": "phút", "seconds": "giây",
    "second": "giây", "days": "ngày", "weeks": "tuần", "months": "tháng", "years": "năm",
    "percent": "phần trăm", "degrees": "độ", "dollars": "đô la", "dollar": "đô la", "cents": "xu",
}  # fmt: skip
_ENGLISH_UNIT = re.compile(
    r"(?<=\d)(\s?)(" + "|".join(sorted(_ENGLISH_UNITS, key=len, reverse=True)) + r")\b", re.IGNORECASE
)


def english_units(text: str) -> str:
    """``10 pounds`` -> "10 pao", ``3 miles`` -> "3 dặm": vinorm leaves the English word as it is."""
    return _ENGLISH_UNIT.sub(lambda m: " " + _ENGLISH_UNITS[m.group(2).lower()], text)
