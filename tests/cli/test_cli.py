"""The command line end to end: make a demo model, then synthesise with a shipped voice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import srt

from server_helpers import demo_model


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "f5vi", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_make_demo_model_then_synth(tmp_path: Path, repo_root: Path) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    model = tmp_path / "demo"
    made = _run(["make-demo-model", str(model)], repo_root, env)
    assert made.returncode == 0, made.stderr
    assert "DEMO" in made.stdout and (model / "model_last.pt").is_file() and (model / "vocos").is_dir()

    env.update(F5VI_MODEL=str(model), F5VI_VOCODER=str(model / "vocos"), F5VI_DEVICE="cpu")
    out = tmp_path / "hello.flac"
    args = ["synth", "--text", "Xin chào các bạn.", "--voice", "vi_north_male", "--out", str(out)]
    done = _run([*args, "--nfe-step", "4", "--seed", "11"], repo_root, env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["demo_model"] is True and report["seed"] == 11 and report["format"] == "flac"
    info = sf.info(out)
    assert info.samplerate == 24_000 and info.channels == 1
    assert abs(info.duration - report["duration_seconds"]) < 0.01

    bad = _run(
        ["synth", "--text", "   ", "--voice", "vi_north_male", "--out", str(tmp_path / "x.wav")],
        repo_root,
        env,
    )
    assert bad.returncode == 2 and "invalid_text" in bad.stderr
    missing = _run(
        ["synth", "--text", "a", "--voice", "../etc/passwd", "--out", str(tmp_path / "y.wav")], repo_root, env
    )
    assert (
        missing.returncode == 2
        and "Traceback" not in missing.stderr
        and "invalid_voice_name" in missing.stderr
    )


def test_synth_and_normalize_with_two_voices(
    tmp_path: Path, repo_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    model = demo_model(tmp_path_factory.getbasetemp())
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    env.update(F5VI_MODEL=str(model), F5VI_VOCODER=str(model / "vocos"), F5VI_DEVICE="cpu")
    text = "Xin chào các bạn, hôm nay trời đẹp quá. [vi_south_male] Tạm biệt, hẹn gặp lại nhé."
    out = tmp_path / "duo.wav"
    args = ["synth", "--text", text, "--voice", "vi_north_male", "--out", str(out), "--nfe-step", "4"]
    subtitles = ["--srt", str(tmp_path / "duo.srt"), "--vtt", str(tmp_path / "duo.vtt")]
    done = _run([*args, "--seed", "3", *subtitles], repo_root, env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [s["voice_id"] for s in report["segments"]] == ["vi_north_male", "vi_south_male"]
    assert report["timestamps_method"] == "estimated"
    cues = list(srt.parse((tmp_path / "duo.srt").read_text(encoding="utf-8")))
    assert " ".join(c.content.replace("\n", " ") for c in cues) == text.replace(" [vi_south_male]", "")
    assert cues[-1].end.total_seconds() <= report["duration_seconds"] + 1.0
    assert (tmp_path / "duo.vtt").read_text(encoding="utf-8").startswith("WEBVTT")
    assert sum(s["chunk_count"] for s in report["segments"]) == report["chunks"]
    assert abs(sf.info(out).duration - report["duration_seconds"]) < 0.01

    preview = _run(["normalize", text, "--voice", "vi_north_male", "--json"], repo_root, env)
    assert preview.returncode == 0, preview.stderr
    plan = json.loads(preview.stdout)
    assert [s["voice_id"] for s in plan["segments"]] == ["vi_north_male", "vi_south_male"]
    assert plan["chunk_count"] == report["chunks"]
    assert abs(plan["estimated_duration_seconds"] - report["duration_seconds"]) <= 0.002
    readable = _run(["normalize", text, "--voice", "vi_north_male"], repo_root, env)
    assert "(vi_south_male)" in readable.stdout, readable.stdout

    missing = _run([*args[:2], "Một. [nobody] Hai.", *args[3:]], repo_root, env)
    assert missing.returncode == 2 and "voice_not_found" in missing.stderr and "[[" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.parametrize("text", ["\x00", "😀🎉", "\u200b\u200d", "\u0301", "[" * 10_000])
def test_synth_refuses_a_text_with_nothing_to_say_before_loading_a_model(tmp_path: Path, text: str) -> None:
    from f5vi.cli.synth import synthesize_to_file
    from f5vi.config import Settings
    from f5vi.engine.errors import InvalidTextError
    from f5vi.jobs.requests import TTSInput

    settings = Settings(model=str(tmp_path / "no-model"), data_dir=tmp_path / "data", device="cpu")
    with pytest.raises(InvalidTextError, match="read aloud"):  # a model load would fail otherwise
        synthesize_to_file(settings, TTSInput(text=text, ref_name="vi_north_male"), tmp_path / "x.wav")
    assert not (tmp_path / "x.wav").exists()


def test_normalize_and_synth_take_a_lexicon_file_and_ssml(
    tmp_path: Path, repo_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    model = demo_model(tmp_path_factory.getbasetemp())
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    env.update(F5VI_MODEL=str(model), F5VI_VOCODER=str(model / "vocos"), F5VI_DEVICE="cpu")
    text = '<speak>ChatGPT chạy trên iOS.<break time="250ms"/>Nguyen ios.</speak>'
    lexicon = ["--lexicon", "docs/examples/brands.lexicon"]  # the file docs/text.md shows
    preview = _run(["normalize", text, "--voice", "vi_north_male", "--json", *lexicon], repo_root, env)
    assert preview.returncode == 0, preview.stderr
    plan = json.loads(preview.stdout)
    assert plan["ssml"] is True and [s["pause_before_seconds"] for s in plan["segments"]] == [0.0, 0.25]
    assert plan["normalized_text"] == "chát gi pi ti chạy trên ai ô ét. nguyễn ios."  # iOS is case-sensitive
    assert [text[h["char_start"] : h["char_end"]] for h in plan["lexicon_hits"]] == [
        "ChatGPT",
        "iOS",
        "Nguyen",
    ]

    out = tmp_path / "lex.wav"
    args = [
        "synth",
        "--text",
        text,
        "--voice",
        "vi_north_male",
        "--out",
        str(out),
        "--nfe-step",
        "2",
        *lexicon,
    ]
    done = _run(args, repo_root, env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["normalized_text"] == plan["normalized_text"]

    bad = tmp_path / "bad.lexicon"
    bad.write_text("GPT = gi pi ti\nGPT\n", encoding="utf-8")
    refused = _run(["normalize", "a", "--voice", "vi_north_male", "--lexicon", str(bad)], repo_root, env)
    assert refused.returncode == 2 and f"{bad}:2: expected 'TERM = READING'" in refused.stderr
    assert "Traceback" not in refused.stderr
    phoneme = _run(
        ["normalize", "<speak><phoneme>a</phoneme></speak>", "--voice", "vi_north_male"], repo_root, env
    )
    assert phoneme.returncode == 2 and "invalid_ssml" in phoneme.stderr and "<phoneme>" in phoneme.stderr


def test_synth_verify_reports_each_chunk(
    tmp_path: Path, repo_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tiny_whisper import tiny_whisper

    model = demo_model(tmp_path_factory.getbasetemp())
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        F5VI_MODEL=str(model),
        F5VI_VOCODER=str(model / "vocos"),
        F5VI_DEVICE="cpu",
        F5VI_ASR_MODEL=str(tiny_whisper(tmp_path_factory)),
        F5VI_VERIFY_MAX_CER="0",
        F5VI_VERIFY_MAX_ATTEMPTS="2",
        F5VI_DATA_DIR=str(tmp_path / "data"),
    )
    out = tmp_path / "checked.wav"
    args = ["synth", "--text", "Xin chào các bạn.", "--voice", "vi_north_male", "--out", str(out)]
    done = _run([*args, "--nfe-step", "4", "--seed", "3", "--verify"], repo_root, env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    [chunk] = report["verification"]
    assert chunk["attempts"] == 2 and chunk["passed"] is False and report["demo_asr"] is False
    plain = json.loads(_run([*args, "--nfe-step", "4", "--seed", "3"], repo_root, env).stdout)
    assert plain["verification"] is None
