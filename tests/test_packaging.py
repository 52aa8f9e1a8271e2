"""The package as docker/Dockerfile builds it: sdist, wheel, install, and the app imports from it.

The image once shipped a 0-byte ``f5vi/__init__.py`` (a stale ``build/lib`` from the dependency
layer's ``pip install .`` went into the second install) and crashed at start, while every test of
the source tree passed. This test redoes the Dockerfile's package steps without Docker, so CI sees
the installed artefact: the build context is the tree minus ``.dockerignore``; the files the builder
stage COPYs into its package folder are laid out the same way (mtimes kept, as COPY does); the
same ``docker/build_package.sh`` builds the sdist and the wheel; the wheel goes into a throw-away
venv that borrows this venv's third-party packages (a ``.pth`` file, no network) but nothing of the
source tree, and from there the HTTP app and the RunPod worker import and the CLI runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "docker" / "Dockerfile"
BUILD_SCRIPT = "build_package.sh"


# ------------------------------------------------------------------------------ build context
def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax (Go ``filepath.Match`` plus ``**``), anchored at the context root."""
    out = []
    i = 0
    pattern = pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            if pattern.startswith("/", i):  # "**/x" also matches "x" at the root
                out[-1] = "(?:.*/)?"
                i += 1
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _context_files(repo: Path) -> list[str]:
    """What ``docker build`` sends: tracked and untracked-unignored files, less ``.dockerignore``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout.decode()
    rules = []
    for line in (repo / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((negated, _dockerignore_regex(line.lstrip("!"))))

    def excluded(path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        verdict = False
        for negated, regex in rules:  # the last matching rule wins, as in Docker
            if any(regex.match(prefix) for prefix in prefixes):
                verdict = not negated
        return verdict

    return [p for p in listed.split("\0") if p and (repo / p).is_file() and not excluded(p)]


def _builder_copies(dockerfile: str) -> tuple[str, list[tuple[list[str], str]]]:
    """The builder stage's package folder (the one build_package.sh gets) and the COPYs into it."""
    builder = dockerfile.split("AS builder", 1)[1].split("\nFROM ", 1)[0]
    call = re.search(rf"sh {BUILD_SCRIPT} (\S+) (\S+)", builder)
    assert call, f"the Dockerfile's builder stage no longer builds the package with {BUILD_SCRIPT}"
    package_dir = call.group(1).strip("./")
    copies = []
    for match in re.finditer(r"^COPY (?!--from)(.+) (\S+)$", builder, re.M):
        sources, dest = match.group(1).split(), match.group(2)
        if dest.strip("./").split("/")[0] == package_dir or dest.endswith(BUILD_SCRIPT) or dest == "./":
            copies.append((sources, dest))
    return package_dir, copies


def _lay_out(context: Path, workdir: Path, copies: list[tuple[list[str], str]]) -> None:
    """Docker COPY semantics: a file goes into ``dest/`` (or becomes ``dest``), a folder's contents
    go into ``dest``; modification times are kept (they decided the stale-build bug)."""
    for sources, dest in copies:
        target = workdir / dest
        for source in sources:
            origin = context / source
            assert origin.exists(), f"COPY source {source} is not in the build context"
            if origin.is_dir():
                shutil.copytree(origin, target, dirs_exist_ok=True, copy_function=shutil.copy2)
            else:
                into = target / origin.name if dest.endswith("/") else target
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, into)


# ------------------------------------------------------------------------------ throw-away venv
def _borrowed_site_dirs() -> list[str]:
    """This interpreter's third-party package folders, except any that holds an ``f5vi`` package
    (the editable install's ``src/``): the throw-away venv must import the wheel or nothing."""
    dirs = []
    for entry in sys.path:
        if not entry or not entry.rstrip("/").endswith(("site-packages", "dist-packages")):
            continue
        if (Path(entry) / "f5vi").exists() or entry in dirs:
            continue
        dirs.append(entry)
    return dirs


def _make_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=60)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "_borrowed.pth").write_text("\n".join(_borrowed_site_dirs()) + "\n")
    return python


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "F5VI_", "VIRTUAL_ENV"))}
    env.update(HF_HUB_OFFLINE="1", HOME=str(tmp_path), F5VI_DATA_DIR=str(tmp_path / "data"))
    return env


# ------------------------------------------------------------------------------ the test
def test_the_wheel_the_image_installs_is_src_and_runs(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.fail("the packaging test needs the git checkout (it lists the build context with git)")
    context = tmp_path / "context"
    for rel in _context_files(REPO):
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, context / rel)
    assert not (context / "tests").exists() and not (context / "bench").exists()

    package_dir, copies = _builder_copies(DOCKERFILE.read_text())
    workdir = tmp_path / "build"
    _lay_out(context, workdir, copies)
    dist = tmp_path / "dist"
    env = _clean_env(tmp_path)
    built = subprocess.run(
        ["sh", BUILD_SCRIPT, package_dir, str(dist)],
        cwd=workdir,
        env={**env, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "holds exactly the" in built.stdout
    assert len(list(dist.glob("f5vi-*.tar.gz"))) == 1, "no sdist was built"
    (wheel,) = dist.glob("f5vi-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped_init = zf.read("f5vi/__init__.py")
    assert shipped_init == (REPO / "src" / "f5vi" / "__init__.py").read_bytes(), (
        f"the wheel's f5vi/__init__.py ({len(shipped_init)} bytes) is not src/f5vi/__init__.py"
    )

    python = _make_venv(tmp_path / "venv")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
         "--ignore-installed", "--no-warn-script-location", "-q", str(wheel)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr

    venv_purelib = sysconfig.get_paths(vars={"base": str(tmp_path / "venv")})["purelib"]
    probe = (
        "import f5vi, f5vi.api.app, f5vi.runpod.handler; "
        "print(f5vi.__file__); print(f5vi.__version__); "
        "f5vi.api.app.create_app"
    )
    imported = subprocess.run(
        [str(python), "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
    module_file, version = imported.stdout.split()[:2]
    assert Path(module_file).is_relative_to(venv_purelib), f"imported f5vi from {module_file}, not the wheel"
    assert version == re.search(r'__version__ = "(.+)"', shipped_init.decode()).group(1)

    cli = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "f5vi"), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert "serve" in cli.stdout and "make-demo-model" in cli.stdout


def test_dockerignore_patterns_follow_docker_rules() -> None:
    """The context filter above is only as good as its pattern matching."""
    assert _dockerignore_regex("tests").match("tests")
    assert not _dockerignore_regex("tests").match("src/tests")
    assert _dockerignore_regex("**/__pycache__").match("__pycache__")
    assert _dockerignore_regex("**/__pycache__").match("src/f5vi/__pycache__")
    assert _dockerignore_regex("*.egg-info").match("f5vi.egg-info")
    assert not _dockerignore_regex("*.egg-info").match("src/f5vi.egg-info")
    assert _dockerignore_regex("src/*.egg-info").match("src/f5vi.egg-info")
