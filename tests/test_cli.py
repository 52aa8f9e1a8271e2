"""The command line end to end: make a demo model, then synthesise with a shipped voice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import soundfile as sf


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
