"""docker/entrypoint.sh mode selection and model-path wiring, run with a stand-in ``python`` on PATH.

No Docker daemon is needed: the entrypoint is a POSIX shell script whose only job is to choose
what to exec; the stand-in records the command line and the environment it was given.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
DOCKERFILE = REPO / "docker" / "Dockerfile"

_RECORD = 'import json, os, sys; print(json.dumps({"argv": sys.argv[1:], "env": dict(os.environ)}))'
_SHIM = '#!/bin/sh\nexec "{real}" -c \'{record}\' "$@"\n'


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "python"
    shim.write_text(_SHIM.format(real=os.path.realpath(sys.executable), record=_RECORD))
    shim.chmod(0o755)
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "F5VI_DATA_DIR": str(tmp_path / "data"),
        "F5VI_OUTPUT_DIR": str(tmp_path / "output"),
        "F5VI_BAKED_MODELS_DIR": str(tmp_path / "baked"),
    }


def _run(env: dict[str, str], *args: str) -> tuple[int, dict, str]:
    proc = subprocess.run(["sh", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=30)
    data = json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else {}
    return proc.returncode, data, proc.stderr


def test_auto_mode_is_http_outside_runpod(env: dict[str, str]) -> None:
    rc, data, _ = _run(env)
    assert rc == 0
    assert data["argv"][:2] == ["-m", "f5vi"]
    assert data["argv"][2:] == ["serve", "--host", "0.0.0.0", "--port", "8000"]


def test_auto_mode_is_runpod_on_a_serverless_worker(env: dict[str, str]) -> None:
    env["RUNPOD_WEBHOOK_GET_JOB"] = "https://api.runpod.ai/v2/x/job-take/$RUNPOD_POD_ID?gpu=h100"
    rc, data, _ = _run(env)
    assert rc == 0
    assert data["argv"] == ["-m", "f5vi.runpod.handler"]


def test_explicit_modes_and_pass_through_arguments(env: dict[str, str]) -> None:
    rc, data, _ = _run(env, "runpod", "--rp_serve_api", "--rp_api_port", "8123")
    assert rc == 0
    assert data["argv"] == ["-m", "f5vi.runpod.handler", "--rp_serve_api", "--rp_api_port", "8123"]

    env["F5VI_MODE"] = "runpod"
    rc, data, _ = _run(env, "http")
    assert rc == 0, "an explicit argument wins over F5VI_MODE"
    assert data["argv"][2] == "serve"

    rc, data, _ = _run(env)
    assert data["argv"] == ["-m", "f5vi.runpod.handler"]


def test_baked_weights_become_the_model_paths_and_hub_goes_offline(
    env: dict[str, str], tmp_path: Path
) -> None:
    baked = tmp_path / "baked"
    (baked / "f5tts").mkdir(parents=True)
    (baked / "f5tts" / "model_last.pt").write_bytes(b"x")
    (baked / "vocos").mkdir()
    (baked / "vocos" / "config.yaml").write_text("x")
    rc, data, _ = _run(env, "http")
    assert rc == 0
    assert data["env"]["F5VI_MODEL"] == str(baked / "f5tts")
    assert data["env"]["F5VI_VOCODER"] == str(baked / "vocos")
    assert "F5VI_ASR_MODEL" not in data["env"]  # not baked: left to the settings default
    assert data["env"]["HF_HUB_OFFLINE"] == "1"

    env["F5VI_MODEL"] = "/somewhere/else"
    rc, data, _ = _run(env, "http")
    assert data["env"]["F5VI_MODEL"] == "/somewhere/else", "an explicit setting wins over baked weights"


def test_without_baked_weights_nothing_is_forced(env: dict[str, str]) -> None:
    rc, data, _ = _run(env, "http")
    assert rc == 0
    assert "F5VI_MODEL" not in data["env"]
    assert "HF_HUB_OFFLINE" not in data["env"]


def test_state_goes_to_a_per_worker_directory_on_the_network_volume(
    env: dict[str, str], tmp_path: Path
) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    del env["F5VI_DATA_DIR"], env["F5VI_OUTPUT_DIR"]
    env.update({"F5VI_RUNPOD_VOLUME": str(volume), "RUNPOD_POD_ID": "worker-abc"})
    rc, data, _ = _run(env, "runpod")
    assert rc == 0
    assert data["env"]["F5VI_DATA_DIR"] == str(volume / "f5vi/workers/worker-abc/data")
    assert data["env"]["F5VI_OUTPUT_DIR"] == str(volume / "f5vi/workers/worker-abc/output")
    assert (volume / "f5vi/workers/worker-abc/data").is_dir()


def test_unwritable_state_directory_fails_clearly(env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env["F5VI_DATA_DIR"] = str(blocker / "data")
    rc, _, stderr = _run(env, "runpod")
    assert rc == 78
    assert "not writable" in stderr and str(blocker / "data") in stderr


def test_dockerfile_copies_only_existing_paths_and_drops_root() -> None:
    """The image cannot be built in CI here (no daemon), so check what a build would trip on."""
    text = DOCKERFILE.read_text()
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER f5vi$", runtime, re.M), "runtime stage must run as the non-root user"
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:[0-9.]+-runtime-", text, re.M)
    for line in text.splitlines():
        match = re.match(r"COPY (?:--chown=\S+ )?(?!--from)(.+) (\S+)$", line)
        if match:
            for source in match.group(1).split():
                assert (REPO / source).exists(), f"COPY source {source} is missing from the repo"
    assert (REPO / "test_input.json").is_file()
    payload = json.loads((REPO / "test_input.json").read_text())
    assert set(payload["input"]) >= {"text", "ref_name", "speed"}
    assert (REPO / "voices" / f"{payload['input']['ref_name']}.wav").is_file()
