"""Vocab loading, tokenizer modes and OOV reporting (golden parity is in test_text_golden.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from f5vi.engine.errors import ModelLoadError
from f5vi.engine.text.vocab import Vocab


@pytest.fixture(scope="module")
def tiny_path(golden_dir: Path) -> Path:
    return golden_dir / "tiny_v0" / "vocab.txt"


@pytest.fixture(scope="module")
def tiny(tiny_path: Path) -> Vocab:
    return Vocab.from_file(tiny_path)


def _write(path: Path, lines: list[str], trailing_newline: bool = True) -> Path:
    path.write_text("\n".join(lines) + ("\n" if trailing_newline else ""), encoding="utf-8")
    return path


def test_tiny_vocab_layout(tiny: Vocab, tiny_path: Path) -> None:
    lines = tiny_path.read_text(encoding="utf-8").split("\n")[:-1]
    assert len(tiny) == len(lines) == 89
    assert tiny.id_of(" ") == 0
    for index, token in enumerate(lines):
        assert tiny.id_of(token) == index


def test_config_json_vocab_is_read_like_vocab_txt(tmp_path: Path, tiny_path: Path) -> None:
    """The Vietnamese checkpoint ships its vocab under the name config.json."""
    config = tmp_path / "config.json"
    shutil.copy(tiny_path, config)
    a, b = Vocab.from_file(tiny_path), Vocab.from_file(config)
    assert a.char_to_id == b.char_to_id
    assert torch.equal(a.encode(["xin chào"]), b.encode(["xin chào"]))


def test_only_the_newline_is_stripped(tmp_path: Path) -> None:
    path = _write(tmp_path / "vocab.txt", [" ", "a", "b ", "\t", "ˈa"])
    vocab = Vocab.from_file(path)
    assert vocab.id_of(" ") == 0
    assert vocab.id_of("b ") == 2
    assert vocab.id_of("b") == 0 and "b" not in vocab
    assert vocab.id_of("\t") == 3
    assert vocab.id_of("ˈa") == 4
    assert len(vocab) == vocab.line_count == 5


def test_last_line_without_newline_keeps_its_token(tmp_path: Path) -> None:
    path = _write(tmp_path / "vocab.txt", [" ", "a", "ỹ"], trailing_newline=False)
    vocab = Vocab.from_file(path)
    assert vocab.id_of("ỹ") == 2
    assert len(vocab) == 3


def test_duplicate_lines_count_once_and_the_last_index_wins(tmp_path: Path) -> None:
    vocab = Vocab.from_file(_write(tmp_path / "vocab.txt", [" ", "a", "b", "a"]))
    assert len(vocab) == 3  # upstream's vocab_size = len(dict)
    assert vocab.line_count == 4
    assert vocab.id_of("a") == 3


def test_bad_vocab_files_raise_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError):
        Vocab.from_file(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    with pytest.raises(ModelLoadError):
        Vocab.from_file(tmp_path / "empty.txt")
    (tmp_path / "config.json").write_text('{\n  "dim": 1024\n}\n', encoding="utf-8")
    with pytest.raises(ModelLoadError, match="JSON"):
        Vocab.from_file(tmp_path / "config.json")
    (tmp_path / "latin1.txt").write_bytes(b" \n\xe9\n")
    with pytest.raises(ModelLoadError):
        Vocab.from_file(tmp_path / "latin1.txt")


def test_oov_characters_map_to_zero_and_are_reported(tiny: Vocab) -> None:
    batch = tiny.encode_with_report(["Xin chào 🎉🎉"])
    assert batch.ids[0].tolist() == [tiny.id_of(t) for t in batch.tokens[0]]
    assert batch.ids[0, 0].item() == 0  # "X" is not in the tiny vocab
    assert dict(batch.report.oov) == {"X": 1, "🎉": 2}
    warnings = batch.report.warnings()
    assert len(warnings) == 1
    assert "3 character(s)" in warnings[0] and "'🎉'×2" in warnings[0] and "'X'×1" in warnings[0]


def test_newlines_and_tabs_are_not_reported(tiny: Vocab) -> None:
    report = tiny.check("xin\nchào\ta")
    assert report.ok
    assert tiny.encode(["a\nb"])[0].tolist() == [tiny.id_of("a"), 0, tiny.id_of("b")]


def test_encode_pads_with_minus_one_and_accepts_token_lists(tiny: Vocab) -> None:
    ids = tiny.encode(["ab", ["a", "b", "c"], ""])
    assert ids.dtype == torch.long
    assert ids.tolist() == [
        [tiny.id_of("a"), tiny.id_of("b"), -1],
        [tiny.id_of("a"), tiny.id_of("b"), tiny.id_of("c")],
        [-1, -1, -1],
    ]
    with pytest.raises(TypeError):
        tiny.encode("ab")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        tiny.encode([])


def test_char_mode_has_no_jieba_spaces(tiny: Vocab, tiny_path: Path) -> None:
    assert "".join(tiny.tokenize("trường; “a”", mode="char")) == 'trường, "a"'
    assert "".join(tiny.tokenize("trường; “a”")) == 'trườ ng, "a"'
    plain = Vocab.from_file(tiny_path, mode="char")
    assert plain.tokenize("đang") == ["đ", "a", "n", "g"]
    assert Vocab.from_file(tiny_path).tokenize("đang") == ["đ", " ", "a", "n", "g"]


def test_chinese_characters_are_reported_as_unsupported(tiny: Vocab) -> None:
    tokens, report = tiny.tokenize_with_report("xin 你好 a中b")
    # upstream inserts a space before every Han character (then pypinyin, which we do not ship)
    assert "".join(tokens) == "xin  你 好 a 中b"
    assert dict(report.unsupported) == {"你": 1, "好": 1, "中": 1}
    assert any("Chinese" in w for w in report.warnings())


def test_has_uppercase(tmp_path: Path, tiny: Vocab) -> None:
    assert not tiny.has_uppercase
    letters = "aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
    lines = [" ", *letters, *letters.upper()]
    assert Vocab.from_file(_write(tmp_path / "vocab.txt", lines)).has_uppercase
    without_one = [t for t in lines if t != "Ỹ"]
    assert not Vocab.from_file(_write(tmp_path / "vocab2.txt", without_one)).has_uppercase
