"""``f5vi eval`` on the demo model with the demo recogniser and the demo speaker model (nothing
downloadable): every utterance is a job of the real job system, the reports are written, ``--compare``
runs the second configuration on the same engine object, and the demo is said everywhere."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from f5vi.config import Settings
from f5vi.engine.errors import InvalidParameterError
from f5vi.evaluation.configs import parse_compare
from f5vi.evaluation.runner import Evaluator
from f5vi.evaluation.testlist import load_list, parse_list
from server_helpers import demo_model


def test_shipped_list_covers_the_categories() -> None:
    utterances = load_list(None)
    assert 95 <= len(utterances) <= 110
    categories = {u.category for u in utterances}
    assert {"short", "numbers", "dates", "names", "loanwords", "long"} <= categories
    assert {u.voice for u in utterances} == {"vi_north_male", "vi_south_male", "vi_central_male"}
    assert any(re.search(r"\d", u.text) for u in utterances)
    with pytest.raises(InvalidParameterError, match="line 2"):
        parse_list("v1\tok\nno tab here\n")


def test_compare_keys_are_checked() -> None:
    assert parse_compare(["nfe=16", "verify=on", "epss=off", "dtype=bfloat16"]) == {
        "nfe_step": 16,
        "verify": True,
        "use_epss": False,
        "dtype": "bfloat16",
    }
    with pytest.raises(InvalidParameterError, match="KEY=VALUE"):
        parse_compare(["temperature=1"])
    with pytest.raises(InvalidParameterError, match="nfe_step"):
        parse_compare(["nfe_step=0"])


def test_eval_with_compare_writes_the_reports(
    tmp_path: Path, repo_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    model = demo_model(tmp_path_factory.getbasetemp())
    listing = tmp_path / "list.tsv"
    listing.write_text(
        "## short\nvi_north_male\tXin chào.\n## numbers\nvi_south_male\tTôi có 25 quyển sách.\n"
        "vi_central_male\tHẹn gặp lại.\nno_such_voice\tAi đây?\n",
        encoding="utf-8",
    )
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        F5VI_MODEL=str(model),
        F5VI_VOCODER=str(model / "vocos"),
        F5VI_DEVICE="cpu",
        F5VI_NFE_STEP="4",
        F5VI_NORMALIZER="none",
        F5VI_ASR_MODEL=str(tmp_path / "no-such-asr"),
        F5VI_SPEAKER_MODEL=str(tmp_path / "no-such-speaker"),
        F5VI_VERIFY_MAX_ATTEMPTS="2",
        F5VI_DATA_DIR=str(tmp_path / "data"),
        F5VI_VOICES_DIR=str(repo_root / "voices"),
    )
    out = tmp_path / "report"
    args = ["eval", "--out", str(out), "--list", str(listing), "--limit", "2", "--demo-fallback"]
    done = subprocess.run(
        [sys.executable, "-m", "f5vi", *args, "--compare", "verify=on", "nfe_step=5"],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["demo"] is True
    base, compare = summary["configs"]
    for config in (base, compare):
        engine = config["engine"]
        assert engine["demo_model"] and engine["demo_asr"] and engine["demo_speaker"]
        assert config["summary"]["succeeded"] == 2
    assert compare["engine"]["nfe_step"] == 5 and compare["engine"]["verify"] is True
    assert base["summary"]["attempts_per_chunk"] == 1 and base["summary"]["failed_chunks"] == 0
    # the demo model says noise: every verified chunk fails and takes every attempt
    assert compare["summary"]["attempts_per_chunk"] == 2
    assert compare["summary"]["failed_chunks"] == compare["summary"]["chunks"]

    rows = list(csv.DictReader((out / "results.csv").open(encoding="utf-8")))
    assert [r["config"] for r in rows] == ["base"] * 2 + ["compare"] * 2
    for row in rows:
        assert row["status"] == "succeeded"
        assert float(row["cer"]) > 0 and -1 <= float(row["speaker_similarity"]) <= 1
        assert float(row["duration_seconds"]) > 0 and float(row["rtf"]) > 0
        assert (out / row["audio"]).is_file()
    assert [r["seed"] for r in rows[:2]] == [r["seed"] for r in rows[2:]] == ["0", "1"]
    document = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert document["differences"]["attempts_per_chunk"] == 1
    assert document["configs"][1]["summary"]["cer_by_category"].keys() == {"short", "numbers"}

    page = (out / "report.html").read_text(encoding="utf-8")
    assert "DEMO" in page and page.count("<svg") >= 6 and "Δ (compare − base)" in page
    assert not re.search(r"<script|<link|src=\"http|href=\"http|url\(", page)  # self-contained
    assert "Tôi có 25 quyển sách." in page


def test_compare_on_the_same_model_keeps_one_engine(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    model = demo_model(tmp_path_factory.getbasetemp())
    settings = Settings(model=str(model), vocoder=str(model / "vocos"), device="cpu", data_dir=tmp_path)
    evaluator = Evaluator(settings, tmp_path / "out", demo_fallback=True)
    first = evaluator.engine_for(settings.model_copy(update={"nfe_step": 4}))
    second = evaluator.engine_for(settings.model_copy(update={"nfe_step": 8, "verify": True}))
    assert second is first and first.transcriber is evaluator.asr
