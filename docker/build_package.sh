#!/bin/sh
# Build the f5vi sdist and wheel from TREE into OUTDIR and check that the wheel holds exactly src/f5vi.
#
#   PYTHON=/path/to/python sh docker/build_package.sh TREE OUTDIR
#
# Used by docker/Dockerfile (builder stage) and by tests/test_packaging.py, so the test builds the
# package the way the image does. PYTHON must have `build`, and the backend named in pyproject.toml's
# [build-system] (--no-isolation: nothing is downloaded here).
#
# Why a check: the image once shipped a 0-byte f5vi/__init__.py because a second `pip install .`
# reused a stale build/lib from an earlier install in the same tree. `python -m build` builds the
# wheel from the unpacked sdist (a fresh tree, no build/ to reuse); the comparison below makes any
# other way of shipping something that is not src/ fail the build instead of the container's start.
set -eu

tree=${1:?usage: build_package.sh TREE OUTDIR}
out=${2:?usage: build_package.sh TREE OUTDIR}
python=${PYTHON:-python3}

mkdir -p "$out"
"$python" -m build --no-isolation --outdir "$out" "$tree"

set -- "$out"/f5vi-*.whl
if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
  echo "build_package.sh: expected one f5vi wheel in $out, found: $*" >&2
  exit 1
fi

"$python" -c '
import sys, zipfile
from pathlib import Path

src, wheel = Path(sys.argv[1]) / "src" / "f5vi", Path(sys.argv[2])
def shipped(name):
    return not ("/__pycache__/" in name or name.endswith(".pyc"))

expected = {
    "f5vi/" + p.relative_to(src).as_posix(): p.read_bytes()
    for p in src.rglob("*")
    if p.is_file() and shipped("/" + p.relative_to(src).as_posix())
}
with zipfile.ZipFile(wheel) as zf:
    actual = {n: zf.read(n) for n in zf.namelist() if n.startswith("f5vi/") and shipped(n)}
problems = [f"missing from the wheel: {n}" for n in sorted(expected.keys() - actual.keys())]
problems += [f"not in src/: {n}" for n in sorted(actual.keys() - expected.keys())]
problems += [
    f"differs from src/: {n} ({len(actual[n])} bytes in the wheel, {len(expected[n])} in src/)"
    for n in sorted(expected.keys() & actual.keys())
    if actual[n] != expected[n]
]
if problems:
    sys.exit("build_package.sh: the wheel is not src/f5vi:\n  " + "\n  ".join(problems))
print(f"build_package.sh: {wheel.name} holds exactly the {len(expected)} files of src/f5vi")
' "$tree" "$1"
