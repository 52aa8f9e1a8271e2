"""Rules of our Vietnamese chunker (upstream's chunk_text parity is in test_text_golden.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from f5vi.engine.text.chunking import chunk_text

STORY = (
    "Ngày xưa, ở một ngôi làng nhỏ ven sông, có một cậu bé tên là An. Mỗi sáng, An thức dậy thật sớm "
    "để giúp mẹ ra đồng. Cánh đồng lúa chín vàng trải dài tít tắp, gió thổi nhẹ làm những bông lúa "
    "nghiêng mình như đang chào đón ngày mới. Năm tháng trôi qua, An lớn lên, học hành chăm chỉ và thi "
    "đỗ vào trường đại học ở thành phố."
)


def nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def collapsed(text: str) -> str:
    return " ".join(text.split())


def test_short_text_is_one_chunk() -> None:
    assert chunk_text("Xin chào các bạn.", 135) == ["Xin chào các bạn."]
    assert chunk_text("  xin   chào \n", 135) == ["xin chào"]
    assert chunk_text("   ", 135) == []


@pytest.mark.parametrize("max_chars", [20, 40, 80, 135, 300])
def test_chunks_reassemble_the_text_and_respect_the_budget(max_chars: int) -> None:
    chunks = chunk_text(STORY, max_chars, min_chars=0)
    assert " ".join(chunks) == collapsed(STORY)
    assert all(nbytes(c) <= max_chars for c in chunks)
    with_merge = chunk_text(STORY, max_chars)
    assert " ".join(with_merge) == collapsed(STORY)
    assert all(nbytes(c) <= max_chars + 12 for c in with_merge)


def test_sentence_boundaries_are_preferred_to_clauses() -> None:
    text = "Hôm nay trời đẹp, nắng vàng rực rỡ. Chúng ta đi dạo, rồi về nhà."
    # both sentences fit on their own (48 and 37 bytes), not together
    assert chunk_text(text, 60) == ["Hôm nay trời đẹp, nắng vàng rực rỡ.", "Chúng ta đi dạo, rồi về nhà."]


def test_long_sentence_is_split_at_clauses() -> None:
    text = "Ở thành phố, An gặp nhiều bạn mới, học nhiều điều hay, nhưng mỗi đêm cậu vẫn nhớ quê nhà."
    chunks = chunk_text(text, 50)
    assert all(c.endswith((",", ".")) for c in chunks), chunks
    assert " ".join(chunks) == text


def test_hard_cut_only_at_spaces() -> None:
    words = ["một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín", "mười"] * 4
    text = " ".join(words)
    chunks = chunk_text(text, 30, min_chars=0)
    assert len(chunks) > 1
    assert all(nbytes(c) <= 30 for c in chunks)
    assert [w for c in chunks for w in c.split()] == words


def test_a_word_longer_than_the_budget_is_kept_whole() -> None:
    long_word = "siêuuuuuuuuuuuuuuuuuuuuuuudài"
    chunks = chunk_text(f"một {long_word} hai ba bốn.", 10, min_chars=0)
    assert long_word in chunks


@pytest.mark.parametrize(
    "token",
    ["TP.HCM", "3,5", "2.5", "10:30", "1.500.000đ", "v.v.", "PGS.TS."],
)
def test_protected_tokens_are_never_split(token: str) -> None:
    text = (
        f"Ông ấy nói rằng {token} là đúng, và chúng tôi đồng ý với ông ấy. "
        f"Ngày mai {token} sẽ được công bố, rồi mọi người cùng xem."
    )
    for max_chars in (10, 25, 40, 60):
        chunks = chunk_text(text, max_chars, min_chars=0)
        assert sum(c.count(token) for c in chunks) == 2, (max_chars, chunks)
        assert " ".join(chunks) == text


def test_abbreviations_do_not_end_sentences() -> None:
    text = "Ông Mr. Smith đến Tp. Hồ Chí Minh hôm qua. Bà ấy ở lại Hà Nội với con."
    chunks = chunk_text(text, 55)
    assert chunks == ["Ông Mr. Smith đến Tp. Hồ Chí Minh hôm qua.", "Bà ấy ở lại Hà Nội với con."]


def test_initials_do_not_end_sentences() -> None:
    text = "Ông Nguyễn V. A đến sớm. Mọi người chào ông."
    assert chunk_text(text, 35) == ["Ông Nguyễn V. A đến sớm.", "Mọi người chào ông."]
    # a vowel letter is an interjection, not an initial
    after = "Mọi người chào ông rồi đi."
    assert chunk_text(f"Ừ. {after}", 36, min_chars=0) == ["Ừ.", after]


def test_decimal_commas_are_not_clause_marks() -> None:
    text = "Giá tăng 3,5 phần trăm và lãi suất giảm còn 2,75 phần trăm trong quý này"
    chunks = chunk_text(text, 40, min_chars=0)
    assert all("3,5" in c or "2,75" in c or ("3," not in c and "2," not in c) for c in chunks)
    assert any("3,5" in c for c in chunks) and any("2,75" in c for c in chunks)


def test_closing_quotes_stay_with_their_sentence() -> None:
    text = 'Anh ấy nói: "Tôi sẽ đến." Nhưng rồi anh ấy không đến nữa.'
    assert chunk_text(text, 45) == ['Anh ấy nói: "Tôi sẽ đến."', "Nhưng rồi anh ấy không đến nữa."]


def test_line_breaks_end_sentences() -> None:
    text = "Dòng thứ nhất không có dấu\nDòng thứ hai cũng vậy"
    assert chunk_text(text, 40) == ["Dòng thứ nhất không có dấu", "Dòng thứ hai cũng vậy"]
    assert chunk_text(text, 300) == ["Dòng thứ nhất không có dấu Dòng thứ hai cũng vậy"]


def test_very_short_pieces_are_merged() -> None:
    sentence = "Hôm nay chúng ta sẽ học bài mới về lịch sử Việt Nam."  # 69 bytes
    text = f"Vâng. {sentence}"  # 76 bytes
    assert chunk_text(text, 72, min_chars=0) == ["Vâng.", sentence]
    assert chunk_text(text, 72) == [text]  # "Vâng." is folded in, 4 bytes over the budget


def test_short_piece_goes_to_the_smaller_neighbour() -> None:
    first = ("ab " * 14).strip() + "."  # 42 bytes
    last = ("cd " * 15).strip() + "."  # 45 bytes
    text = f"{first} Ừ. {last}"
    assert chunk_text(text, 45, min_chars=0) == [first, "Ừ.", last]
    assert chunk_text(text, 45) == [f"{first} Ừ.", last]
    assert chunk_text(f"{last} Ừ. {first}", 45) == [last, f"Ừ. {first}"]


def test_chunks_are_balanced() -> None:
    text = "a " * 59 + "a"  # 119 bytes of one-letter words
    sizes = [nbytes(c) for c in chunk_text(text, 100, min_chars=0)]
    assert len(sizes) == 2
    assert max(sizes) - min(sizes) <= 2


def test_invalid_budget() -> None:
    with pytest.raises(ValueError):
        chunk_text("xin chào", 0)


def test_golden_texts(golden_dir: Path) -> None:
    cases = json.loads((golden_dir / "text_cases.json").read_text(encoding="utf-8"))["chunk_text"]
    for case in cases:
        chunks = chunk_text(case["text"], case["max_chars"])
        assert " ".join(chunks) == collapsed(case["text"])
        for chunk in chunks:
            assert nbytes(chunk) <= case["max_chars"] + 12, chunk
        # with a budget this size, punctuated texts are only cut at punctuation
        if case["max_chars"] >= 135 and "." in case["text"]:
            assert all(c[-1] in '.!?,;:…"' for c in chunks), chunks
