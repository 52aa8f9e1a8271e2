"""The compact golden data in tests/golden/ rebuilds upstream's files exactly, and a change is caught."""

from __future__ import annotations

import lzma
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load, save

from golden_data import (
    COMPACT_CFM,
    GOLDEN_SOURCE,
    MODELS,
    XZ_PRESET,
    GoldenDataError,
    materialize,
    pack,
    read_sums,
    sha256,
)

GOLDEN_BUDGET_BYTES = 15 * 1024 * 1024


def test_rebuilt_set_is_exactly_the_upstream_files(golden_dir: Path) -> None:
    sums = read_sums()
    rebuilt = {str(p.relative_to(golden_dir)) for p in golden_dir.rglob("*") if p.is_file()}
    assert rebuilt == set(sums)
    assert all(sha256(golden_dir / name) == digest for name, digest in sums.items())
    assert {f"{m}/{f}" for m in MODELS for f in ("cfm_sample.safetensors", "model.safetensors")} <= rebuilt


def test_committed_golden_data_stays_small() -> None:
    size = sum(p.stat().st_size for p in GOLDEN_SOURCE.rglob("*") if p.is_file())
    assert size < GOLDEN_BUDGET_BYTES, size


def test_pack_reproduces_the_committed_compact_file(golden_dir: Path) -> None:
    assert pack(golden_dir, "tiny_e2") == (GOLDEN_SOURCE / "tiny_e2" / COMPACT_CFM).read_bytes()


@pytest.mark.parametrize("damage", ["verbatim_file", "trajectory_value"])
def test_a_changed_value_is_caught(tmp_path: Path, damage: str) -> None:
    source = tmp_path / "source"
    shutil.copytree(GOLDEN_SOURCE, source)
    if damage == "verbatim_file":
        path = source / "tiny_v0" / "vocab.txt"
        path.write_text(path.read_text(encoding="utf-8").replace("a", "b", 1), encoding="utf-8")
        expected = "tiny_v0/vocab.txt"
    else:
        path = source / "tiny_v1" / COMPACT_CFM
        compact = load(lzma.decompress(path.read_bytes()))
        compact["euler8_b2.trajectory"][3, 1, 100, 50] += 1e-6
        path.write_bytes(lzma.compress(save(compact), preset=XZ_PRESET))
        expected = "tiny_v1/cfm_sample.safetensors"
    with pytest.raises(GoldenDataError, match=expected):
        materialize(tmp_path / "rebuilt", source)
