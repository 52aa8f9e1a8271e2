"""The one canonicaliser of verification and ``f5vi eval``, on real Vietnamese pairs."""

from __future__ import annotations

import unicodedata

import pytest

from f5vi.engine.text.canonical import (
    canonical,
    canonical_words,
    character_error_rate,
    read_integer,
    word_error_rate,
)

SAME = [
    # tone placement, old and new style
    ("Hoà Bình", "hòa bình"),
    ("thuý kiều", "thúy kiều"),
    ("sức khoẻ", "sức khỏe"),
    ("thoả thuận", "thỏa thuận"),
    ("loè loẹt", "lòe lọet"),
    # y / i
    ("kỹ thuật", "kĩ thuật"),
    ("quý khách", "quí khách"),
    ("lý do", "lí do"),
    ("nước Mỹ", "nước mĩ"),
    ("y tá", "i tá"),
    # numbers as PhoWhisper writes them vs as the normaliser said them
    ("25 tuổi", "hai mươi lăm tuổi"),
    ("năm 2024", "năm hai nghìn không trăm hai mươi tư"),
    ("1.000.000 đồng", "một triệu đồng"),
    ("3,5 ki lô", "ba phẩy năm ki lô"),
    ("105", "một trăm linh năm"),
    ("1005", "một nghìn không trăm linh năm"),
    ("21", "hai mươi mốt"),
    ("15%", "mười lăm phần trăm"),
    ("007", "không không bảy"),
    # regional number words
    ("ba ngàn", "ba nghìn"),
    ("một trăm lẻ năm", "một trăm linh năm"),
    ("hai mươi bốn", "hai mươi tư"),
    ("hai mươi một", "hai mươi mốt"),
    # case, punctuation, spacing
    ("Xin chào, Việt Nam!", "xin chào việt nam"),
    ("TP. Hồ Chí Minh", "tp hồ chí minh"),
]

DIFFERENT = [
    ("tuy", "ti"),  # "uy" after a consonant is a vowel cluster, not the y/i variant
    ("thuý", "thúi"),
    ("ma", "má"),  # a tone is a letter
    ("mà", "mả"),
    ("bán", "bàn"),
    ("ăn", "an"),  # vowel quality marks stay
    ("đi", "di"),
    ("hai mươi", "hai mươi hai"),
]


@pytest.mark.parametrize(("written", "spoken"), SAME)
def test_variants_fold_to_one_form(written: str, spoken: str) -> None:
    assert canonical(written) == canonical(spoken)
    assert character_error_rate(spoken, written) == 0.0
    assert word_error_rate(spoken, written) == 0.0


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_real_differences_remain(a: str, b: str) -> None:
    assert canonical(a) != canonical(b)
    assert character_error_rate(a, b) > 0


def test_nfc_and_nfd_are_the_same_text() -> None:
    text = "Tiếng Việt có sáu thanh điệu: ngang, huyền, sắc, hỏi, ngã, nặng."
    nfd = unicodedata.normalize("NFD", text)
    assert nfd != text
    assert canonical_words(nfd) == canonical_words(text)


def test_error_rates_count_edits() -> None:
    # one syllable of four dropped
    assert word_error_rate("tôi đi học về", "tôi học về") == pytest.approx(0.25)
    # a tone added to "hôm nay" (6 letters): one edit
    assert character_error_rate("hôm nay", "hôm này") == pytest.approx(1 / 6)
    assert character_error_rate("xin chào", "") == 1.0
    assert character_error_rate("", "") == 0.0


def test_integers_read_as_the_normaliser_reads_them() -> None:
    assert " ".join(read_integer(2024)) == "hai nghìn không trăm hai mươi tư"
    assert " ".join(read_integer(10)) == "mười"
    assert " ".join(read_integer(11)) == "mười một"
    assert " ".join(read_integer(1_500_000)) == "một triệu năm trăm nghìn"
    assert " ".join(read_integer(2_000_000_000)) == "hai tỷ"
