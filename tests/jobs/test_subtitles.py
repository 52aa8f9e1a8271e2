"""Subtitles from timestamps: broadcast rules, the text as submitted, and both standard parsers."""

from __future__ import annotations

import io
import itertools
import re
from typing import Any

import pytest
import srt
import webvtt

from f5vi.jobs.subtitles import (
    MAX_CUE_SECONDS,
    MAX_LINE_CHARS,
    MIN_CUE_SECONDS,
    cues,
    render,
    tokens,
    wrap,
)

TEXT = (
    "Ngày 5/12/2024, TP.HCM có 10 triệu dân và hàng nghìn con phố nhỏ. Buổi sáng, người dân thường dậy "
    "sớm để tập thể dục quanh hồ, ăn một bát phở nóng rồi đi làm bằng xe máy trên những con đường đông "
    "đúc. Chiều về, gió mát thổi qua những hàng cây xanh mướt. Vâng! [v2] Hẹn gặp lại các bạn vào tuần "
    "sau nhé, với nhiều câu chuyện thú vị hơn nữa về thành phố mang tên Bác."
)


def _timestamps(text: str) -> dict[str, Any]:
    """Words as the engine reports them: several spoken words per written number, pauses at marks."""
    words: list[dict[str, Any]] = []
    time = 0.0
    for match in re.finditer(r"\S+", text):
        token = match.group()
        if token == "[v2]":
            continue
        spoken = 5 if any(c.isdigit() for c in token) else 1
        for k in range(spoken):
            words.append(
                {"text": f"w{k}", "start": round(time, 3), "end": round(time + 0.28, 3),
                 "char_start": match.start(), "char_end": match.end(), "chunk": 0}
            )  # fmt: skip
            time += 0.32
        if token[-1] in ",.!":
            time += 0.4
    return {"method": "estimated", "sentences": [], "words": words, "chunks": []}


def _check_rules(items: list[Any]) -> None:
    for cue in items:
        assert 1 <= len(cue.lines) <= 2
        assert all(len(line) <= MAX_LINE_CHARS for line in cue.lines)
        assert MIN_CUE_SECONDS - 1e-9 <= cue.end - cue.start <= MAX_CUE_SECONDS + 1e-9
    assert all(a.end <= b.start for a, b in itertools.pairwise(items))


def test_cues_follow_broadcast_rules_and_show_the_submitted_words() -> None:
    items = cues(TEXT, _timestamps(TEXT))
    _check_rules(items)
    written = [t for t in TEXT.split() if t != "[v2]"]
    assert " ".join(" ".join(c.lines) for c in items).split() == written  # never inside a word, in order
    # the first sentence (its numbers read as many words) is over 7 s: it is cut at its comma
    assert items[0].lines == ("Ngày 5/12/2024,",) and items[1].lines[0].startswith("TP.HCM có 10")
    # cues end at punctuation wherever a mark is in reach
    assert sum(1 for c in items if c.lines[-1][-1] in ",.!") >= len(items) - 1
    for cue in items:
        assert TEXT[cue.char_start : cue.char_end].split()[0] == cue.lines[0].split()[0]


def test_a_short_sentence_is_held_for_a_second_without_overlapping_the_next() -> None:
    text = "Vâng! Chúng ta đi thôi."
    items = cues(text, _timestamps(text))
    assert items[0].end - items[0].start >= MIN_CUE_SECONDS
    _check_rules(items)


def _words(text: str) -> list[str]:
    return text.split()


def test_lines_break_after_punctuation_near_the_middle_else_balanced() -> None:
    assert wrap(_words("Hôm nay trời đẹp quá, chúng ta cùng đi dạo nhé bạn")) == (
        "Hôm nay trời đẹp quá,",
        "chúng ta cùng đi dạo nhé bạn",
    )
    assert wrap(_words("một hai ba bốn năm sáu bảy tám chín mười một hai ba bốn")) == (
        "một hai ba bốn năm sáu bảy",
        "tám chín mười một hai ba bốn",
    )
    assert wrap(["x" * 30] * 3) is None  # cannot fit two lines


def test_tokens_join_the_words_read_from_one_written_token() -> None:
    found = tokens(TEXT, _timestamps(TEXT))
    assert found[1].text == "5/12/2024," and found[1].end - found[1].start == pytest.approx(4 * 0.32 + 0.28)


def test_srt_and_webvtt_parse_with_the_standard_parsers() -> None:
    stamps = _timestamps(TEXT)
    items = cues(TEXT, stamps)
    parsed_srt = list(srt.parse(str(render(TEXT, stamps, "srt"))))
    assert [c.content for c in parsed_srt] == [c.text for c in items]
    assert [c.start.total_seconds() for c in parsed_srt] == [c.start for c in items]
    assert [c.end.total_seconds() for c in parsed_srt] == [c.end for c in items]

    vtt = webvtt.from_buffer(io.StringIO(str(render(TEXT, stamps, "vtt"))))
    assert [c.text for c in vtt.captions] == [c.text for c in items]
    assert [c.start_in_seconds + c.start_time.milliseconds / 1000 for c in vtt.captions] == pytest.approx(
        [c.start for c in items]
    )
    as_json = render(TEXT, stamps, "json")
    assert isinstance(as_json, dict) and as_json["method"] == "estimated"
    assert [c["text"] for c in as_json["cues"]] == [c.text for c in items]


def test_markup_characters_are_escaped_in_webvtt() -> None:
    text = "A <b> & B --> C."
    vtt = webvtt.from_buffer(io.StringIO(str(render(text, _timestamps(text), "vtt"))))
    assert "&lt;b&gt;" in vtt.captions[0].raw_text and "&amp;" in vtt.captions[0].raw_text
