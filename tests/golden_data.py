"""The upstream golden data: stored compactly in ``tests/golden/``, rebuilt byte for byte for the tests.

The full set made by upstream F5-TTS is ~23 MB, most of it tensors that other tensors already
determine. The repository keeps only what cannot be derived and :func:`materialize` rebuilds every
upstream file exactly, then checks each against ``SHA256SUMS`` (the digests of the files upstream's
script wrote), so the tests read the upstream data itself, not an approximation of it:

- ``tiny_*/model.safetensors``: the tensors of ``model.pt`` without ``initted``/``step``
  (``safetensors`` writes a canonical file, so the bytes are identical);
- ``tiny_*/cfm_sample.safetensors``: from ``cfm_compact.safetensors.xz``, which holds every ODE
  ``trajectory`` (lossless, xz), ``lens``, ``duration``, ``text_ids`` and one row of the reference
  mel. ``y0`` is the trajectory's first state, ``out`` its last state with the reference frames
  replaced by the reference mel, and every case's ``cond`` is that same mel row per batch item.

:func:`pack` is the inverse (how the compact files were made from a full set); ``python
tests/golden_data.py DIR`` writes the full set into DIR.
"""

from __future__ import annotations

import hashlib
import lzma
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load, load_file, save, save_file

GOLDEN_SOURCE = Path(__file__).resolve().parent / "golden"
SUMS_FILE = "SHA256SUMS"
MODELS = ("tiny_v0", "tiny_v1", "tiny_e2")
COMPACT_CFM = "cfm_compact.safetensors.xz"
SHARED_COND = "cond"
STORED_KEYS = ("trajectory", "lens", "duration", "text_ids")
XZ_PRESET = 9  # pack's setting; xz output is deterministic for a given preset


class GoldenDataError(RuntimeError):
    """The rebuilt golden data is not what upstream wrote."""


def read_sums(source: Path = GOLDEN_SOURCE) -> dict[str, str]:
    """``relative path -> sha256`` of every upstream file, from ``SHA256SUMS``."""
    sums: dict[str, str] = {}
    for line in (source / SUMS_FILE).read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*")] = digest
    return sums


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def materialize(target: Path, source: Path = GOLDEN_SOURCE) -> Path:
    """Write the full upstream golden set into ``target`` and verify it against ``SHA256SUMS``."""
    sums = read_sums(source)
    target.mkdir(parents=True, exist_ok=True)
    for name in sums:
        stored = source / name
        if stored.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(stored, target / name)
    for model in MODELS:
        _write_model_safetensors(target / model)
        _write_cfm_sample(source / model / COMPACT_CFM, target / model / "cfm_sample.safetensors")
    wrong = {name for name, digest in sums.items() if sha256(target / name) != digest}
    if wrong:
        raise GoldenDataError(f"rebuilt golden files differ from upstream's: {sorted(wrong)}")
    return target


def _write_model_safetensors(model_dir: Path) -> None:
    checkpoint = torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True)
    state = {k: v for k, v in checkpoint["ema_model_state_dict"].items() if k not in ("initted", "step")}
    save_file(state, str(model_dir / "model.safetensors"))


def _write_cfm_sample(compact_path: Path, out_path: Path) -> None:
    compact = load(lzma.decompress(compact_path.read_bytes()))
    cond_row = compact.pop(SHARED_COND)
    full: dict[str, torch.Tensor] = {}
    for case in sorted({key.split(".", 1)[0] for key in compact}):
        trajectory = compact[f"{case}.trajectory"]
        lens = compact[f"{case}.lens"]
        batch, frames = trajectory.shape[1], trajectory.shape[2]
        cond = cond_row.repeat(batch, 1, 1)
        padded = torch.nn.functional.pad(cond, (0, 0, 0, frames - cond.shape[1]))
        reference = (torch.arange(frames)[None] < lens[:, None])[..., None]
        full.update({f"{case}.{name}": compact[f"{case}.{name}"] for name in STORED_KEYS})
        full[f"{case}.cond"] = cond
        full[f"{case}.y0"] = trajectory[0].clone()
        full[f"{case}.out"] = torch.where(reference, padded, trajectory[-1])
    save_file(full, str(out_path))


def pack(full_dir: Path, model: str) -> bytes:
    """The compact file of ``model`` from a full golden set (checks that nothing is lost)."""
    full = load_file(str(full_dir / model / "cfm_sample.safetensors"))
    cond_row = full[f"{next(iter(full)).split('.', 1)[0]}.cond"][0]
    compact: dict[str, torch.Tensor] = {SHARED_COND: cond_row.clone()}
    for key, value in full.items():
        case, name = key.split(".", 1)
        if name in STORED_KEYS:
            compact[key] = value
        elif name == "cond" and not all(torch.equal(row, cond_row) for row in value):
            raise GoldenDataError(f"{model} {case}: the reference mel differs between cases")
    return lzma.compress(save(compact), preset=XZ_PRESET)


if __name__ == "__main__":
    print(materialize(Path(sys.argv[1])))
