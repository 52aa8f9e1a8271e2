"""Spoken (normalised) words map back to the submitted text: numbers, dates, abbreviations, tags."""

from __future__ import annotations

import pytest

from f5vi.engine.text.normalizer import normalize_text
from f5vi.engine.text.offsets import map_words, reading_weight
from f5vi.engine.text.spans import SourcePiece, join_pieces
from f5vi.engine.text.voice_tags import split_voice_tag_pieces


def _owned(text: str, normalizer: str = "vinorm") -> list[tuple[str, str]]:
    spoken = normalize_text(text, normalizer=normalizer).text.split()  # type: ignore[arg-type]
    return [
        (w, text[t.char_start : t.char_end]) for w, t in zip(spoken, map_words(text, spoken), strict=True)
    ]


def _reading_of(pairs: list[tuple[str, str]], token: str) -> str:
    return " ".join(w for w, t in pairs if t == token)


def test_numbers_dates_and_abbreviations_belong_to_their_tokens() -> None:
    text = "Ngày 5/12/2024, TP.HCM có 10 triệu dân. Năm 2024, Dr. Smith đến lúc 10:30."
    pairs = _owned(text)
    assert _reading_of(pairs, "5/12/2024,") == "năm tháng mười hai năm hai nghìn không trăm hai mươi tư,"
    assert _reading_of(pairs, "TP.HCM") == "thành phố hồ chí minh"
    assert _reading_of(pairs, "2024,") == "hai nghìn không trăm hai mươi tư,"
    assert _reading_of(pairs, "10") == "mười"
    assert _reading_of(pairs, "Dr.") == "tiến sĩ"
    assert _reading_of(pairs, "10:30.") == "mười giờ ba mươi phút."
    # words that were not rewritten keep their own token, in order
    assert [t for w, t in pairs if w in ("ngày", "có", "triệu", "smith")] == ["Ngày", "có", "triệu", "Smith"]


def test_neighbouring_rewritten_tokens_are_shared_by_reading_length() -> None:
    pairs = _owned("Tp. HCM có 2024 người.")
    assert _reading_of(pairs, "Tp.") == "thành phố"
    assert _reading_of(pairs, "HCM") == "hồ chí minh"
    assert reading_weight("2024") > reading_weight("có")


def test_spans_never_go_backwards_and_cover_every_word() -> None:
    text = "Giá 1.500.000đ / tháng (khoảng 60 USD), tăng 3,5% so với năm 2023!"
    spoken = normalize_text(text).text.split()
    tokens = map_words(text, spoken)
    assert len(tokens) == len(spoken)
    starts = [t.char_start for t in tokens]
    assert starts == sorted(starts)
    assert all(text[t.char_start : t.char_end].strip() == text[t.char_start : t.char_end] for t in tokens)


def test_voice_tags_hand_on_offsets_into_the_tagged_text() -> None:
    text = "Xin chào 2024. [v2] Tạm biệt [[ghi chú] nhé."
    segments = split_voice_tag_pieces(text)
    _, second = segments[1]
    assert join_pieces(second) == " Tạm biệt [ghi chú] nhé."
    spoken = normalize_text(join_pieces(second), normalizer="none").text.split()
    tokens = map_words(join_pieces(second), spoken, second)
    assert [text[t.char_start : t.char_end] for t in tokens] == ["Tạm", "biệt", "[[ghi", "chú]", "nhé."]
    _, first_pieces = segments[0]
    first = map_words(
        join_pieces(first_pieces), normalize_text(join_pieces(first_pieces)).text.split(), first_pieces
    )
    assert {text[t.char_start : t.char_end] for t in first} == {"Xin", "chào", "2024."}


def test_a_respelled_word_maps_to_the_whole_word_it_replaced() -> None:
    """A lexicon respelling (a non-verbatim piece): every word read from it points at what was written."""
    text = "Dùng ChatGPT nhé."
    pieces = [
        SourcePiece("Dùng ", 0, 5),
        SourcePiece("chát gi pi ti", 5, 12, verbatim=False),
        SourcePiece(" nhé.", 12, 17),
    ]
    given = join_pieces(pieces)
    tokens = map_words(given, given.split(), pieces)
    assert [text[t.char_start : t.char_end] for t in tokens] == ["Dùng", *["ChatGPT"] * 4, "nhé."]


def test_a_text_without_words_to_map_to_is_refused() -> None:
    with pytest.raises(ValueError, match="no source text"):
        map_words("   ", ["một"])
