"""The separate virtual environment in which upstream F5-TTS (PyPI ``f5-tts``) runs for side-by-side mode.

The upstream package is never a dependency of f5vi. Its venv lives under ``bench/out/upstream-venv``
(gitignored) and, so that torch 2.11 (a few GB with its CUDA wheels) is not downloaded a second time, it
sees the site-packages of f5vi's own ``.venv`` through a ``.pth`` file: torch, torchaudio, vocos,
transformers, numpy, soundfile ... are shared, and pip installs into the upstream venv only what is missing
there.

What is installed there (``f5-tts`` itself with ``--no-deps``; its declared requirements include gradio,
wandb, datasets, bitsandbytes, ... which inference never touches):

* what ``f5_tts.infer.utils_infer`` and ``f5_tts.model`` import at module level: x_transformers,
  torchdiffeq, pypinyin, ema_pytorch, accelerate, pydub, librosa, matplotlib (rjieba, vocos, transformers,
  torch(audio) are shared);
* two imports of the *training* code that ``f5_tts.model.__init__`` pulls in unconditionally are NOT
  installed: ``wandb`` (its current release pins an unknown beta package, ``cwevals==0.0.1b1``, which we
  will not install) and ``datasets`` (pyarrow + pandas, ~100 MB, only used to load training data).
  ``bench/upstream_runner.py`` registers empty stand-in modules for exactly these two names before importing
  ``f5_tts``; no inference code path uses them.

Usage: ``python -m bench.upstream_env [--force]`` prints the venv's python. ``bench.run --side-by-side``
calls :func:`ensure_upstream_env` itself.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

UPSTREAM_VERSION = "1.1.22"
BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_VENV = BENCH_DIR / "out" / "upstream-venv"
MAIN_VENV = REPO_ROOT / ".venv"
# Imported at module level by f5_tts.infer.utils_infer / f5_tts.model (see the module docstring).
EXTRA_PACKAGES = (
    "x_transformers",
    "torchdiffeq",
    "pypinyin",
    "ema_pytorch",
    "accelerate",
    "pydub",
    "librosa",
    "matplotlib",
)
STAMP_NAME = ".f5vi-bench-installed"
PTH_NAME = "_f5vi_shared_site.pth"


def _site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def venv_python(venv: Path = DEFAULT_VENV) -> Path:
    return venv / "bin" / "python"


def ensure_upstream_env(venv: Path = DEFAULT_VENV, *, force: bool = False, quiet: bool = False) -> Path:
    """Create (once) the upstream venv and return its python. Idempotent: a stamp file records success."""
    python = venv_python(venv)
    stamp = venv / STAMP_NAME
    wanted = f"f5-tts=={UPSTREAM_VERSION} " + " ".join(EXTRA_PACKAGES)
    if not force and stamp.is_file() and stamp.read_text().strip() == wanted and python.exists():
        return python
    if force and venv.exists():
        shutil.rmtree(venv)
    main_site = Path(sysconfig.get_paths()["purelib"])
    if not (main_site / "torch").is_dir():
        raise RuntimeError(f"torch not found in {main_site}: run this with f5vi's .venv python")
    if not python.exists():
        subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
    site = _site_packages(python)
    # Appended to sys.path after the venv's own site-packages: its own packages take precedence.
    (site / PTH_NAME).write_text(f"{main_site}\n", encoding="utf-8")
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        pip.append("-q")
    subprocess.run([*pip, "--no-deps", f"f5-tts=={UPSTREAM_VERSION}"], check=True)
    subprocess.run([*pip, *EXTRA_PACKAGES], check=True)
    # Smoke check: the import chain the runner needs.
    subprocess.run(
        [str(python), str(BENCH_DIR / "upstream_runner.py"), "--check-imports"],
        check=True,
    )
    stamp.write_text(wanted + "\n", encoding="utf-8")
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--force", action="store_true", help="delete and recreate the venv")
    args = parser.parse_args(argv)
    print(ensure_upstream_env(args.venv, force=args.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
