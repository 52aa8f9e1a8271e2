"""Spoken (normalised) words map back to the submitted text: numbers, dates, abbreviations, tags."""

from __future__ import annotations

import pytest

from f5vi.engine.text.normalizer import normalize_text
from f5vi.engine.text.offsets import compose, identity_map, map_words, reading_weight
from f5vi.engine.text.voice_tags import split_voice_tags


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
    segments = split_voice_tags(text)
    second = segments[1]
    assert second.text == " Tạm biệt [ghi chú] nhé."
    spoken = normalize_text(second.text, normalizer="none").text.split()
    tokens = map_words(second.text, spoken, second.source)
    assert [text[t.char_start : t.char_end] for t in tokens] == ["Tạm", "biệt", "[[ghi", "chú]", "nhé."]
    first = map_words(segments[0].text, normalize_text(segments[0].text).text.split(), segments[0].source)
    assert {text[t.char_start : t.char_end] for t in first} == {"Xin", "chào", "2024."}


def test_offset_maps_compose() -> None:
    # a transformation that drops the first two characters, after one that doubles nothing
    assert compose(identity_map("abcdef"), (2, 3, 4)) == (2, 3, 4)
    assert compose((10, 11, 12, 13), (1, 3)) == (11, 13)


def test_a_text_without_words_to_map_to_is_refused() -> None:
    with pytest.raises(ValueError, match="no source text"):
        map_words("   ", ["một"])
