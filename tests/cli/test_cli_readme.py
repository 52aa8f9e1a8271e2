"""The README's command-line examples, run as written on a machine without weights (offline).

Each line of the README's "Command line" block runs with this interpreter in place of
``.venv/bin/python`` (the optional ``[...]`` flags included, brackets dropped) and no ``F5VI_``
variable set except where the data and outputs go: the configured hub model cannot be had offline, so
``--demo-fallback`` loads the demo model and says so loudly. Without the flag the error names the flag
and variable that fix it; a vocoder that cannot be had names ``--vocoder`` / ``F5VI_VOCODER``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

BANNER = "DEMO MODEL LOADED"


def _readme_commands(repo_root: Path) -> list[list[str]]:
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Command line", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.strip().splitlines():
        line = line.split("#", 1)[0] if "  #" in line else line  # trailing comments
        words = shlex.split(re.sub(r"\[([^\]]*)\]", r"\1", line))
        assert words[:3] == [".venv/bin/python", "-m", "f5vi"], line
        commands.append(words[3:])
    return commands


@pytest.fixture
def offline_env(tmp_path: Path, repo_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("F5VI_")}
    env.update(
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        F5VI_DATA_DIR=str(tmp_path / "data"),  # the demo model is made here, not in the checkout
        F5VI_VOICES_DIR=str(repo_root / "voices"),  # the commands run in tmp_path (their outputs land there)
        F5VI_DEVICE="cpu",
    )
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "f5vi", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_readme_commands_run_offline_with_the_demo_fallback(
    tmp_path: Path, repo_root: Path, offline_env: dict[str, str]
) -> None:
    commands = _readme_commands(repo_root)
    assert [c[0] for c in commands] == [
        *("synth", "synth", "synth", "normalize", "synth", "eval", "voices", "export-openapi")
    ]
    for args in commands:
        done = _run(args, tmp_path, offline_env)
        assert done.returncode == 0, (args, done.stderr)
        if args[0] in ("synth", "normalize", "eval"):
            assert "--demo-fallback" in args
            assert BANNER in done.stderr and "NOISE" in done.stderr, done.stderr
        if args[0] == "synth":
            report = json.loads(done.stdout)
            out = tmp_path / args[args.index("--out") + 1]
            assert report["demo_model"] is True and any("DEMO" in w for w in report["warnings"])
            assert abs(sf.info(out).duration - report["duration_seconds"]) < 0.01
        if args[0] == "normalize":
            plan = json.loads(done.stdout)  # the README's optional --json
            assert plan["voice_id"] == "vi_north_male" and "một phẩy năm triệu" in plan["normalized_text"]
        if "--srt" in args:
            assert (tmp_path / args[args.index("--srt") + 1]).read_text(encoding="utf-8").startswith("1\n")
        if "--verify" in args:
            assert [v["attempts"] >= 1 for v in report["verification"]] == [True] * report["chunks"]
        if args[0] == "eval":
            assert (tmp_path / args[args.index("--out") + 1] / "report.html").is_file()
    assert (tmp_path / "openapi.json").read_text() == (repo_root / "openapi.json").read_text()


def test_without_the_fallback_errors_name_the_fix(
    tmp_path: Path, repo_root: Path, offline_env: dict[str, str]
) -> None:
    commands = _readme_commands(repo_root)
    synth = commands[0]
    normalize = next(c for c in commands if c[0] == "normalize")
    for args in (synth, normalize):
        plain = [a for a in args if a != "--demo-fallback"]
        failed = _run(plain, tmp_path, offline_env)
        assert failed.returncode == 2 and "model_load_failed" in failed.stderr
        assert "--model" in failed.stderr and "F5VI_MODEL" in failed.stderr
        assert "--demo-fallback" in failed.stderr and "Traceback" not in failed.stderr
    assert not (tmp_path / "data" / "models" / "demo").exists()  # nothing was loaded as a demo

    # A demo directory as --model brings its own vocoder; a vocoder that cannot be had names its fix.
    demo = tmp_path / "demo"
    assert _run(["make-demo-model", str(demo)], tmp_path, offline_env).returncode == 0
    with_demo = [*synth[:7], "--model", str(demo), "--nfe-step", "2"]
    assert _run(with_demo, tmp_path, offline_env).returncode == 0
    offline_env["F5VI_VOCODER"] = "charactr/vocos-mel-24khz-not-cached"
    failed = _run(with_demo, tmp_path, offline_env)
    assert failed.returncode == 2 and "--vocoder" in failed.stderr and "F5VI_VOCODER" in failed.stderr
