"""The repository stands alone: no file points at the team folder that sits beside it on the build
machine (its golden data, notes and design draft), which a user who clones the project does not have.
What a test or a reader needs from there is copied in (``tests/golden/``, ``docs/``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Built from pieces so that this file does not match itself.
_TEAM_FOLDER = "shared"
_NAME = _TEAM_FOLDER.encode()
OUTSIDE_REFERENCE = re.compile(
    rb"\.\./" + _NAME + rb"\b"  # ../<folder>
    rb"|\b" + _NAME + rb"/(golden|notes|DESIGN|tools|hooks)\b"  # <folder>/notes/deps.md
    rb"|[\"']" + _NAME + rb"[\"']\s*/"  # parent / "<folder>" / "golden"
)


def _repository_files() -> list[str]:
    """Tracked files plus untracked ones git does not ignore (a new file is caught before its commit)."""
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout: the file list comes from git")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return [name for name in listed.decode().split("\0") if name and (REPO_ROOT / name).is_file()]


def offending_lines(root: Path, names: list[str]) -> list[str]:
    found = []
    for name in names:
        for number, line in enumerate((root / name).read_bytes().splitlines(), start=1):
            if OUTSIDE_REFERENCE.search(line):
                found.append(f"{name}:{number}: {line.decode(errors='replace').strip()[:200]}")
    return found


def test_no_file_points_outside_the_repository() -> None:
    names = _repository_files()
    assert "tests/conftest.py" in names and "README.md" in names
    found = offending_lines(REPO_ROOT, names)
    assert not found, "files point at the team folder beside the repository:\n" + "\n".join(found)


def test_the_pattern_catches_what_it_is_for(tmp_path: Path) -> None:
    folder = _TEAM_FOLDER
    samples = {
        "a.py": f'GOLDEN = ROOT.parent / "{folder}" / "golden"\nx = "../{folder}/golden"\n',
        "b.md": f"see {folder}/notes/deps.md §3 and `{folder}/DESIGN.md`\n",
        "c.toml": "# the shared engine queue; shared by workers\n",
    }
    for name, text in samples.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    found = offending_lines(tmp_path, sorted(samples))
    assert [line.split(":", 2)[:2] for line in found] == [["a.py", "1"], ["a.py", "2"], ["b.md", "1"]]
