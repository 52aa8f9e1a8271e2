"""The SSML subset: segments, spans, readings, errors that name tag and position, hostile documents."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from f5vi.engine.text.script import parse_script
from f5vi.engine.text.spans import source_span
from f5vi.engine.text.ssml import MAX_SSML_CHARS, SsmlError, looks_like_ssml, parse_ssml


def _segments(doc: str) -> list[tuple[str | None, float, int, str]]:
    return [(s.voice, s.rate, s.pause_before_ms, " ".join(s.text.split())) for s in parse_ssml(doc).segments]


def test_breaks_rates_voices_and_paragraphs_make_segments() -> None:
    doc = (
        '<speak>Một.<break time="1.5s"/>Hai <prosody rate="slow">ba '
        '<prosody rate="50%">bốn</prosody></prosody>'
        '<voice name="vi_b"><p>Năm</p><s>Sáu</s></voice><break strength="x-strong"/></speak>'
    )
    assert _segments(doc) == [
        (None, 1.0, 0, "Một."),
        (None, 1.0, 1500, "Hai"),
        (None, 0.8, 0, "ba"),
        (None, 0.4, 0, "bốn"),
        ("vi_b", 1.0, 0, "Năm Sáu"),
    ]
    script = parse_ssml(doc)
    assert script.trailing_pause_ms == 1000 and script.voices() == ("vi_b",)
    assert script.segments[-1].text.count("\n") == 2  # <p> and <s> end sentences


def test_consecutive_breaks_add_up_and_default_is_medium() -> None:
    assert _segments('<speak>a<break/><break time="200ms"/> <break strength="none"/>b</speak>')[1][2] == 700


@pytest.mark.parametrize(
    ("markup", "reading"),
    [
        ('<say-as interpret-as="characters">HTV9</say-as>', "hát tê vê chín"),
        ('<say-as interpret-as="digits">2024</say-as>', "hai không hai bốn"),
        ('<say-as interpret-as="cardinal">1.234.567</say-as>', "1234567"),
        ('<say-as interpret-as="date">05/03/2024</say-as>', "ngày 5 tháng 3 năm 2024"),
        ('<say-as interpret-as="date" format="mdy">03/05/2024</say-as>', "ngày 5 tháng 3 năm 2024"),
        ('<say-as interpret-as="date">2024-03-05</say-as>', "ngày 5 tháng 3 năm 2024"),
        ('<say-as interpret-as="telephone">+84 912 345</say-as>', "cộng tám bốn, chín một hai, ba bốn năm"),
        ('<sub alias="Tổ chức Y tế Thế giới">WHO</sub>', "Tổ chức Y tế Thế giới"),
    ],
)
def test_say_as_and_sub_readings_span_their_element(markup: str, reading: str) -> None:
    doc = f"<speak>Đọc {markup} nhé</speak>"
    (segment,) = parse_ssml(doc).segments
    assert " ".join(segment.text.split()) == f"Đọc {reading} nhé"
    (replaced,) = [p for p in segment.pieces if not p.verbatim]
    assert doc[replaced.char_start : replaced.char_end] == markup


def test_verbatim_pieces_are_the_submitted_text_and_map_back() -> None:
    doc = "<speak>\n  Xin chào <prosody rate='fast'>Việt Nam</prosody> &amp; bạn bè.\n</speak>"
    pieces = [p for s in parse_ssml(doc).segments for p in s.pieces]
    for piece in pieces:
        if piece.verbatim:
            assert doc[piece.char_start : piece.char_end] == piece.text
    fast = parse_ssml(doc).segments[1]
    assert fast.text == "Việt Nam" and doc[fast.char_start : fast.char_end] == "Việt Nam"
    third = parse_ssml(doc).segments[2]
    at = third.text.index("bạn")
    assert doc[slice(*source_span(third.pieces, at, at + 3))] == "bạn"
    assert doc[slice(*source_span(third.pieces, 1, 2))] == "&amp;"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            '<speak>Xin\n chào <phoneme ph="x">y</phoneme></speak>',
            r"<phoneme> is not supported .* line 2, column 7 \(character 17\)",
        ),
        ("<speak>a <audio src='x.wav'/></speak>", r"<audio> is not supported .*line 1, column 10"),
        ('<speak>a <break time="3 minutes"/></speak>', r"<break time='3 minutes'>.*column 10"),
        ('<speak>a <break time="11s"/></speak>', r"longer than 10 s"),
        ('<speak>a <break strength="loud"/></speak>', r"<break strength='loud'>"),
        ('<speak><prosody rate="5">a</prosody></speak>', r"<prosody rate='5'>.* line 1, column 8"),
        ('<speak><prosody pitch="high">a</prosody></speak>', r"<prosody> has no attribute 'pitch'"),
        ('<speak><say-as interpret-as="ordinal">1</say-as></speak>', r"interpret-as='ordinal'"),
        ('<speak><say-as interpret-as="date">hôm qua</say-as></speak>', r"cannot read 'hôm qua'"),
        ('<speak><say-as interpret-as="digits"><sub alias="x">1</sub></say-as></speak>', r"only text"),
        ("<speak><sub>WHO</sub></speak>", r"<sub> needs a non-empty alias"),
        ('<speak><voice name="../x">a</voice></speak>', r"not a voice id"),
        ("<speak>a <b>c</speak>", r"<b> is not supported"),
        ("<speak>a <s>c</speak>", r"not well-formed XML: mismatched tag at line 1, column 16"),
        ("<speak>a &nbsp; b</speak>", r"undefined entity at line 1, column 10"),
        ("<p>a</p>", r"root element must be <speak>"),
        ("<speak><speak>a</speak></speak>", r"<speak> inside <speak>"),
        ('<speak><break time="1s"/></speak>', r"nothing to say"),
    ],
)
def test_errors_name_the_tag_and_its_position(doc: str, message: str) -> None:
    with pytest.raises(SsmlError, match=message) as info:
        parse_ssml(doc)
    assert info.value.http_status == 422 and info.value.code == "invalid_ssml"


def _billion_laughs() -> str:
    entities = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    ]
    return '<?xml version="1.0"?>\n<!DOCTYPE speak [\n' + "\n".join(entities) + "\n]>\n<speak>&lol9;</speak>"


@pytest.mark.parametrize(
    "doc",
    [
        _billion_laughs(),
        '<!DOCTYPE speak [<!ENTITY x SYSTEM "file:///etc/passwd">]><speak>&x;</speak>',
        "<speak>" + "<s>" * 10_000 + "x" + "</s>" * 10_000 + "</speak>",  # deep nesting
        "<speak>" + "<s>" * 20 + "x" + "</s>" * 20 + "<break/>" * 20_000 + "</speak>",  # too many elements
    ],
    ids=["billion-laughs", "external-entity", "deep-nesting", "many-elements"],
)
def test_hostile_documents_fail_fast_in_bounded_memory(doc: str) -> None:
    tracemalloc.start()
    started = time.process_time()
    with pytest.raises(SsmlError) as info:
        parse_script(doc)
    cpu = time.process_time() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert info.value.http_status == 422
    assert peak < 64 * 2**20, peak  # the expansion of billion laughs alone would be ~3 GB
    assert cpu < 30  # a guard against runaway expansion, not a timing claim
    assert (
        "DOCTYPE" in info.value.message
        or "longer than" in info.value.message
        or "elements" in info.value.message
    )


def test_parts_are_bounded() -> None:
    parse_ssml("<speak>" + "a<break/>" * 199 + "b</speak>")
    with pytest.raises(SsmlError, match="more than 200 parts"):
        parse_ssml("<speak>" + "a<break/>" * 200 + "b</speak>")


def test_one_megabyte_document_is_refused_before_parsing() -> None:
    doc = "<speak>" + "xin chào " * 120_000 + "</speak>"
    assert len(doc) > 1_000_000 > MAX_SSML_CHARS
    with pytest.raises(SsmlError, match=f"longer than {MAX_SSML_CHARS}"):
        parse_ssml(doc)


def test_detection_and_plain_text_spans() -> None:
    assert looks_like_ssml("  <speak>a</speak>") and looks_like_ssml('<?xml version="1.0"?><speak>a</speak>')
    assert not looks_like_ssml("a <speak>b</speak>") and not looks_like_ssml("<b>bold</b>")
    plain = parse_script("<b>bold</b> [x] y", "text")
    assert not plain.ssml and [s.voice for s in plain.segments] == [None, "x"]
    with pytest.raises(SsmlError):
        parse_script("no markup", "ssml")
