"""Vietnamese normalisation: the reviewed case table, concurrency, the fallback path and errors."""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
import threading
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from f5vi.engine.errors import InvalidTextError
from f5vi.engine.text.normalizer import normalize_text
from f5vi.engine.text.vinorm_runner import VinormFlags, VinormRunner, find_vinorm_package
from f5vi.engine.text.vocab import Vocab

CASES_FILE = Path(__file__).resolve().parents[2] / "data" / "normalization_cases.json"
CASES: list[dict[str, Any]] = json.loads(CASES_FILE.read_text(encoding="utf-8"))["cases"]


def test_case_table_is_broad_and_mostly_right() -> None:
    assert len(CASES) >= 60
    categories = {case["category"] for case in CASES}
    for needed in ("numbers", "dates", "times", "money", "percent", "phone", "units", "roman", "abbrev",
                   "url", "email", "english", "emoji", "mixedcase",
                   # the weak classes of issue 21
                   "fraction", "ratio", "per_unit", "score", "range", "title", "institution",
                   "acronym_en", "unit_en"):  # fmt: skip
        assert needed in categories, needed
    wrong = [case for case in CASES if case["known_wrong"]]
    assert len(wrong) * 10 <= len(CASES)
    assert all(case.get("note") for case in wrong)
    assert len({case["id"] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_normalization_table(case: dict[str, Any]) -> None:
    result = normalize_text(case["input"])
    assert result.normalizer_used == "vinorm"
    assert result.text == case["expected"]
    if "expected_warning" in case:
        assert any(case["expected_warning"] in w for w in result.warnings), result.warnings
    else:
        assert result.warnings == ()


def test_shipped_abbreviation_files_parse_and_are_package_data() -> None:
    from f5vi.engine.text.readings import DATA_FILES, data_lexicon

    lexicon = data_lexicon()
    origins = {entry.origin.split(":")[0] for entry in lexicon.entries}
    assert origins == {f"f5vi/engine/text/data/{name}" for name in DATA_FILES}
    assert lexicon.lookup("TN&MT") is not None and lexicon.lookup("tn&mt") is None  # exact case
    pyproject = (Path(__file__).resolve().parents[3] / "pyproject.toml").read_text(encoding="utf-8")
    assert "engine/text/data/*.lexicon" in pyproject


def _swap_prone_inputs() -> list[str]:
    """Distinct sentences whose outputs differ only in a number: a swapped output is visible."""
    return [f"Tôi có {n} quả táo và {n * 7 + 3} quả cam." for n in range(1, 9)]


def test_eight_threads_give_the_sequential_results() -> None:
    texts = _swap_prone_inputs()
    sequential = [normalize_text(t).text for t in texts]
    assert len(set(sequential)) == len(texts)
    barrier = threading.Barrier(8)

    def worker(index: int) -> list[str]:
        barrier.wait()
        out = []
        for round_ in range(6):
            text = texts[(index + round_) % len(texts)]
            out.append(normalize_text(text).text)
        return out

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(worker, range(8)))
    for index, outputs in enumerate(results):
        expected = [sequential[(index + round_) % len(texts)] for round_ in range(6)]
        assert outputs == expected


def test_vinorm_module_is_never_imported() -> None:
    normalize_text("Năm 2024.")
    assert "vinorm" not in sys.modules


def test_runner_does_not_write_into_the_package(tmp_path: Path) -> None:
    """Run from a package folder of links: nothing may appear in it (vinorm's TTSnorm writes there)."""
    real = find_vinorm_package()
    assert real is not None
    pkg = tmp_path / "vinorm"
    pkg.mkdir()
    for name in ("main", "lib", "Dict", "Mapping", "RegexRule"):
        os.symlink(real / name, pkg / name)
    pkg.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        before = sorted(p.name for p in pkg.iterdir())
        lines = VinormRunner(pkg).run("Năm 2024 có 365 ngày.\nDòng hai", VinormFlags())
        assert lines[:2] == [
            "năm hai nghìn không trăm hai mươi tư có ba trăm sáu mươi lăm ngày .",
            "dòng hai",
        ]
        assert sorted(p.name for p in pkg.iterdir()) == before
    finally:
        pkg.chmod(stat.S_IRWXU)


def _fake_binary(path: Path, script: str) -> Path:
    path.write_text("#!/bin/sh\n" + script + "\n", encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(
    ("make_binary", "reason"),
    [
        (lambda d: d / "does-not-exist", "not found"),
        (lambda d: _fake_binary(d / "fails", "echo broken >&2; exit 3"), "status 3"),
        (lambda d: _fake_binary(d / "slow", "exec sleep 5"), "timed out"),
        (lambda d: _fake_binary(d / "silent", "exit 0"), "no output"),
    ],
    ids=["missing", "exit-status", "timeout", "no-output"],
)
def test_fallback_to_hamster_is_real_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, make_binary: Any, reason: str
) -> None:
    runner = VinormRunner(binary=make_binary(tmp_path), timeout_s=0.5, timeout_per_1000_chars_s=0.0)
    with caplog.at_level(logging.WARNING, logger="f5vi.engine.text.normalizer"):
        result = normalize_text("Năm 2024 có 365 ngày, giá 1.500.000đ.", vinorm=runner)
    assert result.normalizer_used == "hamster"
    assert any("fallback" in w and reason in w for w in result.warnings), result.warnings
    assert any("falling back" in r.getMessage() for r in caplog.records)
    # the fallback still reads the numbers: no raw text comes back
    assert result.text == (
        "năm hai nghìn không trăm hai mươi bốn có ba trăm sáu mươi lăm ngày, "
        "giá một triệu năm trăm nghìn đồng."
    )


def test_hamster_can_be_chosen_directly() -> None:
    result = normalize_text("Lúc 10:30, nhiệt độ -5°C.", normalizer="hamster")
    assert result.normalizer_used == "hamster"
    assert result.warnings == ()
    assert result.text == "lúc mười giờ ba mươi phút, nhiệt độ âm năm độ xê."


def test_none_only_cleans_up() -> None:
    result = normalize_text("  Năm   2024\ncó 365 ngày  ", normalizer="none")
    assert result.normalizer_used == "none"
    assert result.text == "năm 2024 có 365 ngày"


def test_decomposed_input_is_composed_first() -> None:
    nfd = unicodedata.normalize("NFD", "Tiếng Việt rất đẹp.")
    assert nfd != "Tiếng Việt rất đẹp."
    assert normalize_text(nfd).text == "tiếng việt rất đẹp."
    assert normalize_text(nfd, normalizer="none").text == "tiếng việt rất đẹp."


@pytest.mark.parametrize("text", ["", "   ", "\n\t\n", "🎉😀👍", "!!! ... ???", "“”"])
def test_nothing_to_say_raises(text: str) -> None:
    with pytest.raises(InvalidTextError):
        normalize_text(text)


def test_unknown_normalizer_is_rejected() -> None:
    with pytest.raises(ValueError):
        normalize_text("xin chào", normalizer="espeak")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny(golden_dir: Path) -> Vocab:
    return Vocab.from_file(golden_dir / "tiny_v0" / "vocab.txt")


def test_characters_outside_the_vocab_are_reported(tiny: Vocab) -> None:
    result = normalize_text("Ở đây có 2 người.", vocab=tiny)
    assert result.text == "ở đây có hai người."
    oov = [w for w in result.warnings if "not in the model vocabulary" in w]
    assert len(oov) == 1
    assert "'ở'×1" in oov[0] and "'ờ'×1" in oov[0]


def test_text_entirely_outside_the_vocab_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_text(" \nq\nz\n", encoding="utf-8")
    with pytest.raises(InvalidTextError, match="vocabulary"):
        normalize_text("xin chào", vocab=Vocab.from_file(path))


def test_case_is_kept_when_the_vocab_has_uppercase(tmp_path: Path) -> None:
    letters = "aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join([" ", *letters, *letters.upper(), ".", ","]) + "\n", encoding="utf-8")
    vocab = Vocab.from_file(path)
    assert normalize_text("Xin chào Hà Nội.", vocab=vocab).text == "Xin chào Hà Nội."
    assert normalize_text("Xin chào Hà Nội.", vocab=vocab, lowercase=True).text == "xin chào hà nội."
    assert normalize_text("Xin chào Hà Nội.", vocab=vocab, normalizer="hamster").text == "Xin chào Hà Nội."


def test_long_text_is_normalised_in_one_call() -> None:
    paragraph = "Năm 2024 có 365 ngày, giá vé là 1.500.000đ. " * 200
    result = normalize_text(paragraph)
    assert result.normalizer_used == "vinorm"
    assert result.text.count("một triệu năm trăm nghìn đồng.") == 200
    assert "2024" not in result.text


def test_when_both_normalisers_fail_the_degradation_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import f5vi.engine.text.normalizer as text_module

    def broken(lines: list[str]) -> list[str]:
        raise RuntimeError("hamster is broken")

    monkeypatch.setattr(text_module, "_run_hamster", broken)
    runner = VinormRunner(binary=tmp_path / "missing")
    result = normalize_text("Lúc 10:30 có 2 người.", vinorm=runner)
    assert result.normalizer_used == "none"
    assert any("vinorm" in w for w in result.warnings)
    assert any("g2p-hamster normaliser failed" in w for w in result.warnings)
    assert any("digits" in w for w in result.warnings)
    assert result.text == "lúc 10 giờ 30 phút có 2 người."
