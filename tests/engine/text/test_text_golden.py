"""Exact parity with upstream F5-TTS on every case of tests/golden/text_cases.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from f5vi.engine.text.chunking import chunk_text_upstream, estimate_duration_frames, max_chars_for_reference
from f5vi.engine.text.normalizer import prepare_ref_text, prepare_reference_text, ref_text_for_model
from f5vi.engine.text.vocab import Vocab


@pytest.fixture(scope="module")
def cases(golden_dir: Path) -> dict[str, list[dict[str, Any]]]:
    return json.loads((golden_dir / "text_cases.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tiny_vocab(golden_dir: Path) -> Vocab:
    return Vocab.from_file(golden_dir / "tiny_v0" / "vocab.txt")


def test_golden_file_has_every_section(cases: dict[str, list[dict[str, Any]]]) -> None:
    for section in ("chunk_text", "max_chars", "duration", "tokenize"):
        assert len(cases[section]) >= 9, section


def test_tokenize_matches_convert_char_to_pinyin(
    cases: dict[str, list[dict[str, Any]]], tiny_vocab: Vocab
) -> None:
    for case in cases["tokenize"]:
        assert tiny_vocab.tokenize(case["text"]) == case["after_convert_char_to_pinyin"], case["text"]


def test_token_ids_match_list_str_to_idx(cases: dict[str, list[dict[str, Any]]], tiny_vocab: Vocab) -> None:
    for case in cases["tokenize"]:
        ids = tiny_vocab.encode([case["text"]])
        assert ids.shape == (1, len(case["ids_with_tiny_vocab"]))
        assert ids[0].tolist() == case["ids_with_tiny_vocab"], case["text"]


def test_batch_encoding_pads_every_golden_text_with_minus_one(
    cases: dict[str, list[dict[str, Any]]], tiny_vocab: Vocab
) -> None:
    texts = [case["text"] for case in cases["tokenize"]]
    ids = tiny_vocab.encode(texts)
    width = max(len(case["ids_with_tiny_vocab"]) for case in cases["tokenize"])
    assert ids.shape == (len(texts), width)
    for row, case in enumerate(cases["tokenize"]):
        expected = case["ids_with_tiny_vocab"]
        assert ids[row].tolist() == expected + [-1] * (width - len(expected))


def test_jieba_split_examples_from_the_golden_readme(tiny_vocab: Vocab) -> None:
    assert "".join(tiny_vocab.tokenize("trường")) == "trườ ng"
    assert "".join(tiny_vocab.tokenize("giọng")) == "giọ ng"


def test_chunk_text_upstream(cases: dict[str, list[dict[str, Any]]]) -> None:
    for case in cases["chunk_text"]:
        assert chunk_text_upstream(case["text"], case["max_chars"]) == case["chunks"], (
            case["text"][:40],
            case["max_chars"],
        )


def test_max_chars_for_reference(cases: dict[str, list[dict[str, Any]]]) -> None:
    for case in cases["max_chars"]:
        got = max_chars_for_reference(
            case["ref_text"], case["ref_audio_samples"], case["sample_rate"], case["speed"]
        )
        assert got == case["max_chars"], case


def test_duration_frames(cases: dict[str, list[dict[str, Any]]]) -> None:
    for case in cases["duration"]:
        got = estimate_duration_frames(
            case["ref_text_after_space_rule"], case["ref_audio_frames"], case["gen_text"], case["speed"]
        )
        assert got == case["duration_frames"], case


def test_short_chunks_use_speed_0_3(cases: dict[str, list[dict[str, Any]]]) -> None:
    case = cases["duration"][0]
    ref, frames = case["ref_text_after_space_rule"], case["ref_audio_frames"]
    short = "xin chào"  # 9 bytes
    expected = frames + int(frames / len(ref.encode("utf-8")) * len(short.encode("utf-8")) / 0.3)
    assert estimate_duration_frames(ref, frames, short, 1.0) == expected
    ten_bytes = "xin chào."  # at the threshold the requested speed applies
    per_byte = frames / len(ref.encode("utf-8"))
    assert estimate_duration_frames(ref, frames, ten_bytes, 1.0) == frames + int(per_byte * 10 / 1.0)


def test_reference_text_rules_reproduce_the_golden_reference_strings(
    cases: dict[str, list[dict[str, Any]]],
) -> None:
    """The max_chars cases hold the prepared transcript; the duration cases the same after the space rule."""
    prepared = {case["ref_text"] for case in cases["max_chars"]}
    after_rule = {case["ref_text_after_space_rule"] for case in cases["duration"]}
    assert {ref_text_for_model(text) for text in prepared} == after_rule
    for text in prepared:
        raw = text.rstrip()
        assert prepare_ref_text(raw) == text
        assert prepare_reference_text(raw) == ref_text_for_model(text)


def test_prepare_ref_text_endings() -> None:
    assert prepare_ref_text("xin chào") == "xin chào. "
    assert prepare_ref_text("xin chào.") == "xin chào. "
    assert prepare_ref_text("xin chào!") == "xin chào!. "
    assert ref_text_for_model("xin chào. ") == "xin chào.  "
    assert ref_text_for_model("xin chào。") == "xin chào。"
