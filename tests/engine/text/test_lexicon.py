"""Lexicons: file format and its errors, whole-word matching, case, precedence, spans (no model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from f5vi.engine.text.lexicon import (
    InvalidLexiconError,
    Lexicon,
    LexiconEntry,
    LexiconFileError,
    load_server_lexicon,
    parse_lexicon_text,
    request_entries,
)
from f5vi.engine.text.spans import SourcePiece, join_pieces
from f5vi.engine.text.ssml import parse_ssml


def _apply(lexicon: Lexicon, text: str) -> tuple[str, list[tuple[int, int, str]]]:
    pieces, hits = lexicon.apply([SourcePiece(text, 0, len(text))])
    return join_pieces(pieces), [(h.char_start, h.char_end, h.entry.origin) for h in hits]


def test_file_format_comments_case_and_origins() -> None:
    text = "# brands\n\nGPT = gi pi ti   # a comment\niOS == ai ô ét\nTP.HCM = thành phố Hồ Chí Minh\n"
    entries = parse_lexicon_text(text, "brands.lexicon", "server")
    assert [(e.term, e.say, e.case_sensitive, e.origin) for e in entries] == [
        ("GPT", "gi pi ti", False, "brands.lexicon:3"),
        ("iOS", "ai ô ét", True, "brands.lexicon:4"),
        ("TP.HCM", "thành phố Hồ Chí Minh", False, "brands.lexicon:5"),
    ]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("GPT gi pi ti", 1, "expected 'TERM = READING'"),
        ("ok = ô kê\n = x", 2, "the term is empty"),
        ("GPT =   ", 1, "reading of 'GPT' is empty"),
        ("a  b = x\n\nGPT = a\ngpt = b", 4, "already defined on line 3"),
        ("<b> = x", 1, "must be words"),
        ("x = a <b>", 1, "contains"),
        ("x" * 101 + " = y", 1, "longer than 100"),
    ],
)
def test_bad_file_names_file_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(LexiconFileError) as info:
        parse_lexicon_text(text, "/etc/f5vi/x.lexicon", "server")
    assert info.value.line == line and reason in info.value.reason
    assert str(info.value).startswith(f"/etc/f5vi/x.lexicon:{line}: ")


def test_server_files_one_reading_per_word_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.lexicon").write_text("GPT = gi pi ti\n", encoding="utf-8")
    (tmp_path / "b.lexicon").write_text("# b\ngpt = gờ pê tê\n", encoding="utf-8")
    (tmp_path / "bad.lexicon").write_bytes(b"x = \xff\xfe\n")
    assert len(load_server_lexicon([tmp_path / "a.lexicon"])) == 1
    with pytest.raises(LexiconFileError, match=r"b\.lexicon:2: 'gpt' is already defined at .*a\.lexicon:1"):
        load_server_lexicon([tmp_path / "a.lexicon", tmp_path / "b.lexicon"])
    with pytest.raises(LexiconFileError, match="not UTF-8"):
        load_server_lexicon([tmp_path / "bad.lexicon"])
    with pytest.raises(LexiconFileError, match="cannot read"):
        load_server_lexicon([tmp_path / "missing.lexicon"])


def test_whole_words_only() -> None:
    lexicon = Lexicon(request_entries([("GPT", "gi pi ti", False), ("AI", "ây ai", False)]))
    submitted = "GPT, GPTs, ChatGPT, GPT-4 và AI; TRAIN, (gpt)"
    text, hits = _apply(lexicon, submitted)
    assert text == "gi pi ti, GPTs, ChatGPT, gi pi ti-4 và ây ai; TRAIN, (gi pi ti)"
    assert [submitted[a:b] for a, b, _ in hits] == ["GPT", "GPT", "AI", "gpt"]
    assert [a for a, _, _ in hits] == [0, 20, 29, 41]


def test_case_sensitive_entries_match_their_case_only() -> None:
    lexicon = Lexicon(request_entries([("iOS", "ai ô ét", True), ("Nam", "Nam (tên)", True)]))
    text, hits = _apply(lexicon, "iOS và IOS, ios; Nam và nam")
    assert text == "ai ô ét và IOS, ios; Nam (tên) và nam"
    assert len(hits) == 2


def test_longest_term_wins_and_multiword_terms_match_any_spacing() -> None:
    lexicon = Lexicon(request_entries([("Hồ Chí Minh", "HCM city", False), ("Minh", "MINH", False)]))
    text, _ = _apply(lexicon, "Hồ  Chí Minh và Minh")
    assert text == "HCM city và MINH"


def test_precedence_request_over_voice_over_server() -> None:
    server = Lexicon([LexiconEntry("GPT", "server", False, "server", "s:1"),
                      LexiconEntry("AI", "server ai", False, "server", "s:2"),
                      LexiconEntry("LLM", "server llm", False, "server", "s:3")])  # fmt: skip
    voice = Lexicon([LexiconEntry("GPT", "voice", False, "voice", "v:1"),
                     LexiconEntry("AI", "voice ai", False, "voice", "v:2")])  # fmt: skip
    request = Lexicon(request_entries([("gpt", "request", False)]))
    pieces = [SourcePiece("GPT AI LLM", 0, 10)]
    for lexicon in (request, voice, server):  # the planner's order: highest first
        pieces, _ = lexicon.apply(pieces)
    assert join_pieces(pieces) == "request voice ai server llm"


def test_precedence_within_one_lexicon_and_lookup() -> None:
    both = Lexicon(
        [
            LexiconEntry("GPT", "server", False, "server", "s:1"),
            LexiconEntry("GPT", "voice insensitive", False, "voice", "v:1"),
            LexiconEntry("GPT", "voice exact", True, "voice", "v:2"),
        ]
    )
    assert both.lookup("GPT").say == "voice exact"  # type: ignore[union-attr]
    assert both.lookup("gpt").say == "voice insensitive"  # type: ignore[union-attr]
    assert both.lookup("xyz") is None


def test_spans_point_into_the_submitted_text_and_readings_are_left_alone() -> None:
    submitted = "<speak>Dùng <sub alias='GPT'>cái đó</sub> và GPT &amp; gpt</speak>"
    (segment,) = parse_ssml(submitted).segments
    lexicon = Lexicon(request_entries([("GPT", "gi pi ti", False)]))
    out, hits = lexicon.apply(segment.pieces)
    assert join_pieces(out) == "Dùng  GPT  và gi pi ti & gi pi ti"  # the alias is the user's reading
    assert [submitted[h.char_start : h.char_end] for h in hits] == ["GPT", "gpt"]
    assert [submitted[p.char_start : p.char_end] for p in out if not p.verbatim] == [
        "<sub alias='GPT'>cái đó</sub>",
        "GPT",
        "&amp;",
        "gpt",
    ]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([("", "x", False)], r"lexicon\[0\]: the term is empty"),
        ([("ok", "x", False), ("a]", "x", False)], r"lexicon\[1\]: the term 'a\]' must be words"),
        ([("ok", "[voice]", False)], r"lexicon\[0\]: the reading of 'ok' contains"),
        ([("ok", "x", False)] * 501, "at most 500"),
    ],
)
def test_bad_request_entries_are_invalid_parameters(items: list[tuple[str, str, bool]], message: str) -> None:
    with pytest.raises(InvalidLexiconError, match=message) as info:
        request_entries(items)
    assert info.value.http_status == 422
