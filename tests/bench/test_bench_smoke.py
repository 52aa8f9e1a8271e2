"""A real, quick run of the benchmark harness (bench/run.py) on the tiny config with a tiny text.

Upstream side-by-side mode is not exercised here (it needs its own venv with upstream f5-tts installed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.checkpoints import bench_vocab, ensure_checkpoint  # noqa: E402
from bench.texts import TEXTS  # noqa: E402

from bench import run as bench_run  # noqa: E402


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("bench")
    md = tmp / "RESULTS.md"
    result = bench_run.main(
        [
            "--config", "tiny",
            "--nfe", "2",
            "--text", "Xin chào các bạn, hôm nay trời đẹp.",
            "--threads", "1",
            "--soak", "3",
            "--ckpt-root", str(tmp / "ckpt"),
            "--json-out", str(tmp / "report.json"),
            "--results-md", str(md),
        ]
    )  # fmt: skip
    result["_md"] = md.read_text(encoding="utf-8")
    result["_json"] = json.loads((tmp / "report.json").read_text(encoding="utf-8"))
    return result


def test_report_fields_are_sane(report: dict) -> None:
    row = report["summary"]["custom"]["f5vi"]
    assert row["runs"] == 1
    assert row["audio_seconds"] > 0.5
    assert 0 < row["wall_seconds"] < 60
    assert row["rtf"] == pytest.approx(row["wall_seconds"] / row["audio_seconds"])
    assert 0 < row["first_chunk_seconds"] < 60
    assert row["peak_rss_bytes"] > 50 * 1024 * 1024
    assert "upstream" not in report["summary"]["custom"]
    cfg = report["config"]
    assert (cfg["config"], cfg["nfe"], cfg["threads"], cfg["device"]) == ("tiny", 2, 1, "cpu")
    assert cfg["dtype"] == "float32"
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["cpu_model"]


def test_soak_records_memory_before_and_after(report: dict) -> None:
    soak = report["soak"]
    assert soak["jobs"] == 3 and len(soak["per_job"]) == 3
    assert soak["before"]["rss_bytes"] > 0 and soak["after"]["rss_bytes"] > 0
    assert soak["rss_min_bytes"] <= soak["rss_max_bytes"]


def test_json_and_markdown_written(report: dict) -> None:
    assert report["_json"]["summary"] == json.loads(json.dumps(report["summary"]))
    md = report["_md"]
    assert md.startswith("# Benchmark results")
    assert "| custom |" in md and "tiny" in md and "NFE 2" in md
    assert "consecutive jobs" in md


def test_fixed_texts_and_vocab() -> None:
    assert set(TEXTS) == {"sentence", "paragraph", "long"}
    assert len(TEXTS["sentence"]) < len(TEXTS["paragraph"]) < len(TEXTS["long"])
    assert not any(ch.isdigit() for text in TEXTS.values() for ch in text)
    vocab = bench_vocab(2545)
    assert len(vocab) == len(set(vocab)) == 2545 and vocab[0] == " "


def test_checkpoint_is_reused(tmp_path: Path) -> None:
    first = ensure_checkpoint("tiny", root=tmp_path)
    mtime = (first / "model_last.pt").stat().st_mtime_ns
    assert ensure_checkpoint("tiny", root=tmp_path) == first
    assert (first / "model_last.pt").stat().st_mtime_ns == mtime
    for name in ("config.json", "vocab.txt", "vocos/config.yaml", "vocos/pytorch_model.bin"):
        assert (first / name).is_file()


def test_precision_probe_compares_half_precision_with_float32(tmp_path: Path) -> None:
    from bench import precision

    summary = precision.main(
        ["--config", "tiny", "--frames", "48", "--ref-frames", "16", "--nfe", "4", "--threads", "1",
         "--ckpt-root", str(tmp_path / "ckpt")]
    )  # fmt: skip
    variants = {r["variant"]: r for r in summary["results"]}
    assert set(variants) == {
        "fp32 (reference)",
        "backbone bfloat16, state float32",
        "backbone bfloat16, state bfloat16",
        "backbone float16, state float32",
        "backbone float16, state float16",
    }
    assert summary["rms_model_change"] > 0.05  # the model really moved the frames
    for name, row in variants.items():
        if name != "fp32 (reference)":
            assert 0 < row["relative"] < 0.2, (name, row)
    # fp16 keeps 3 more mantissa bits than bf16
    assert (
        variants["backbone float16, state float32"]["rms_error"]
        < variants["backbone bfloat16, state float32"]["rms_error"]
    )
