"""Load and write BigVGAN generators in NVIDIA's published layout.

A BigVGAN source is a local directory, or a Hugging Face repo id such as
``nvidia/bigvgan_v2_24khz_100band_256x`` (downloaded with the same hub helper as the Vocos vocoder,
cached files used offline), holding ``config.json`` and ``bigvgan_generator.pt`` =
``{"generator": state_dict}``. The state dict stores weight-normalised convolutions as
``<conv>.weight_g`` / ``<conv>.weight_v``; they are folded into ``<conv>.weight`` here, once, exactly as
``torch.nn.utils.remove_weight_norm`` computes it. A generator saved without weight norm (plain
``weight``) loads too. Every failure is a :class:`~f5vi.engine.errors.ModelLoadError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from f5vi.engine.bigvgan import BigVGAN, BigVGANConfig
from f5vi.engine.errors import ModelLoadError
from f5vi.engine.hub import download_vocoder_files
from f5vi.engine.types import HOP_LENGTH, N_MELS, SAMPLE_RATE

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "bigvgan_generator.pt"
DEFAULT_BIGVGAN = "nvidia/bigvgan_v2_24khz_100band_256x"


def is_bigvgan_dir(path: Path) -> bool:
    """True when ``path`` is a directory in NVIDIA's BigVGAN layout."""
    return path.is_dir() and (path / WEIGHTS_FILE).is_file()


def fold_weight_norm(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``<p>.weight_g`` + ``<p>.weight_v`` -> ``<p>.weight`` (``g * v / ||v||``, norm over all dims but 0)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            continue
        if key.endswith(".weight_v"):
            prefix = key[: -len(".weight_v")]
            gain = state.get(prefix + ".weight_g")
            if gain is None:
                raise ModelLoadError(f"{key} has no matching {prefix}.weight_g")
            out[prefix + ".weight"] = torch._weight_norm(value.float(), gain.float(), 0)
        else:
            out[key] = value
    orphans = [k for k in state if k.endswith(".weight_g") and k[:-2] + "_v" not in state]
    if orphans:
        raise ModelLoadError(f"{orphans[0]} has no matching weight_v")
    return out


def unfold_weight_norm(state: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The inverse layout: each convolution weight as ``weight_g`` (its norm) and ``weight_v`` (itself)."""
    convs = {name for name, m in model.named_modules() if isinstance(m, nn.Conv1d | nn.ConvTranspose1d)}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        prefix = key.removesuffix(".weight")
        if key.endswith(".weight") and prefix in convs:
            out[prefix + ".weight_g"] = torch.norm_except_dim(value, 2, 0).contiguous()
            out[prefix + ".weight_v"] = value.contiguous()
        else:
            out[key] = value.contiguous()
    return out


def load_bigvgan(source: str | Path, device: torch.device | str = "cpu") -> BigVGAN:
    """Load a BigVGAN generator (float32, eval mode) from a local directory or a hub repo id."""
    config_path, weights_path = _resolve_files(source)
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(f"cannot read BigVGAN config {config_path}: {exc}") from exc
    config = BigVGANConfig.from_json_dict(raw, origin=str(config_path))
    expected = (SAMPLE_RATE, HOP_LENGTH, N_MELS)
    actual = (config.sampling_rate, config.hop_size, config.num_mels)
    if actual != expected:
        raise ModelLoadError(
            f"BigVGAN {source} produces sample_rate/hop/n_mels {actual}; f5vi needs {expected} "
            f"(use {DEFAULT_BIGVGAN})"
        )
    model = BigVGAN(config)
    _load_weights(model, weights_path)
    try:
        model = model.to(device=torch.device(device))
    except (RuntimeError, AssertionError) as exc:
        raise ModelLoadError(f"cannot move BigVGAN to {device}: {exc}") from exc
    return model.eval().requires_grad_(False)


def _load_weights(model: BigVGAN, path: Path) -> None:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors have no common base class
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(f"cannot read BigVGAN weights {path}: {first_line}") from exc
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("generator"), dict):
        raise ModelLoadError(f"{path}: expected {{'generator': state_dict}} (NVIDIA's layout)")
    state = fold_weight_norm(checkpoint["generator"])
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ModelLoadError(
            f"{path} does not match its config.json: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    wrong = [
        f"{k} {tuple(v.shape)} != {tuple(own[k].shape)}" for k, v in state.items() if v.shape != own[k].shape
    ]
    if wrong:
        raise ModelLoadError(f"{path} does not match its config.json ({'; '.join(wrong[:3])})")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)


def _resolve_files(source: str | Path) -> tuple[Path, Path]:
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
            raise ModelLoadError(f"BigVGAN directory {path} must contain {CONFIG_FILE} and {WEIGHTS_FILE}")
        return path / CONFIG_FILE, path / WEIGHTS_FILE
    text = str(source)
    if path.exists() or text.startswith((".", "/", "~")) or text.count("/") != 1 or "\\" in text:
        raise ModelLoadError(f"BigVGAN source {text!r} is neither a directory nor a repo id")
    config, weights = download_vocoder_files(text, (CONFIG_FILE, WEIGHTS_FILE), "BigVGAN vocoder")
    return config, weights


def save_random_bigvgan(
    directory: str | Path, seed: int = 0, config: BigVGANConfig | None = None, gain: float = 0.6
) -> Path:
    """Write a seeded random BigVGAN (``config.json`` + ``bigvgan_generator.pt``, weight-norm layout).

    For tests and the demo model: the exact published layout with random values (noise, not speech).
    Every convolution gets random directions with the weight-norm gain ``gain`` per output channel
    (so the signal neither dies out nor explodes through the layers); log-scale Snake parameters are
    drawn around 0 (alpha, beta near 1).
    """
    config = config or BigVGANConfig()
    model = BigVGAN(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith((".alpha", ".beta")):
                parameter.normal_(0.0, 0.1, generator=generator)
            elif name.endswith(".weight"):
                parameter.normal_(0.0, 1.0, generator=generator)
                parameter.mul_(gain / torch.norm_except_dim(parameter, 2, 0))
            else:
                parameter.zero_()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    raw: dict[str, Any] = config.to_json_dict()
    (out / CONFIG_FILE).write_text(json.dumps(raw, indent=4), encoding="utf-8")
    torch.save({"generator": unfold_weight_norm(model.state_dict(), model)}, out / WEIGHTS_FILE)
    return out


def tiny_bigvgan_config() -> BigVGANConfig:
    """Same structure as the published 24 kHz model (6 upsamplers, 3 AMP blocks each), 1/48 the width."""
    return BigVGANConfig(upsample_initial_channel=64)
