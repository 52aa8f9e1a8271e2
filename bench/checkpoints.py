"""Random-weight checkpoints of a given size in upstream layout, for the benchmark (``bench/out/ckpt``).

Each directory holds what both f5vi and upstream F5-TTS load:

* ``model_last.pt``: ``{"ema_model_state_dict": {"ema_model.<key>": ..., "initted", "step"}}`` (upstream
  layout, written by :func:`f5vi.engine.checkpoint.save_upstream_checkpoint`);
* ``config.json``: ``{"backbone": "DiT", "arch": {...}}``, the architecture (upstream ``DiT`` keyword
  arguments);
* ``vocab.txt``: space first, the characters of Vietnamese, then filler characters up to ``VOCAB_SIZE``
  entries so the text embedding has the size of upstream's pinyin vocab (2545 entries): the parameter count
  then equals the published one (F5TTS_Small 159,228,804; F5TTS_Base 337,096,836, counting the 32-entry
  rotary buffer). The tiny config keeps the demo vocab.
* ``vocos/``: a random Vocos in the published ``charactr/vocos-mel-24khz`` layout.

Weights are drawn from N(0, 0.02²) with a fixed seed (the usual transformer init scale; zero-initialised
layers are not zero, so every layer does real work). Speed does not depend on the values, only on the
shapes.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from f5vi.engine.checkpoint import build_model, save_upstream_checkpoint
from f5vi.engine.demo import DEMO_ARCH, demo_vocab
from f5vi.engine.model.configs import ARCHS, ModelArch, arch_from_config_dict
from f5vi.engine.vocoder import save_random_vocos

OUT_DIR = Path(__file__).resolve().parent / "out" / "ckpt"
VOCAB_SIZE = 2545  # upstream's pinyin vocab (Emilia_ZH_EN): what the published parameter counts assume
CONFIGS = {"tiny": None, "small": "F5TTS_Small", "base": "F5TTS_Base"}
INIT_STD = 0.02
STAMP = "bench_checkpoint.json"


def arch_for(config: str) -> tuple[str, ModelArch]:
    """``(arch name, arch)`` for a bench config name (tiny | small | base)."""
    if config not in CONFIGS:
        raise ValueError(f"unknown config {config!r}; choose one of {', '.join(CONFIGS)}")
    preset = CONFIGS[config]
    if preset is None:
        return "tiny (demo)", arch_from_config_dict(DEMO_ARCH)
    return preset, ARCHS[preset]


def bench_vocab(size: int) -> list[str]:
    """The demo vocab, extended with unique CJK filler characters to ``size`` entries."""
    vocab = demo_vocab()
    code = 0x4E00
    while len(vocab) < size:
        vocab.append(chr(code))
        code += 1
    return vocab


def upstream_arch_kwargs(arch: ModelArch) -> dict[str, Any]:
    """Upstream ``DiT(**kwargs)`` arguments (same names as ours; upstream accepts every one of them)."""
    if arch.backbone != "DiT":
        raise ValueError("the benchmark covers DiT configs only")
    return arch.backbone_kwargs()


def ensure_checkpoint(config: str, *, root: Path = OUT_DIR, seed: int = 0) -> Path:
    """Create (once) and return the directory of the random checkpoint for ``config``."""
    name, arch = arch_for(config)
    directory = root / config
    want = {"config": config, "arch_name": name, "arch": asdict(arch), "seed": seed, "init_std": INIT_STD}
    stamp = directory / STAMP
    if stamp.is_file():
        have = json.loads(stamp.read_text(encoding="utf-8"))
        if {k: have.get(k) for k in want} == want and (directory / "model_last.pt").is_file():
            return directory
    directory.mkdir(parents=True, exist_ok=True)
    vocab = demo_vocab() if config == "tiny" else bench_vocab(VOCAB_SIZE)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (directory / "config.json").write_text(
        json.dumps({"backbone": arch.backbone, "arch": upstream_arch_kwargs(arch)}, indent=1),
        encoding="utf-8",
    )
    generator = torch.Generator().manual_seed(seed)
    cfm = build_model(arch, text_num_embeds=len(vocab), mel_dim=100)
    with torch.no_grad():
        for parameter in cfm.parameters():
            parameter.normal_(0.0, INIT_STD, generator=generator)
    save_upstream_checkpoint(cfm, directory / "model_last.pt")
    save_random_vocos(directory / "vocos", seed=seed)
    want["num_params"] = sum(p.numel() for p in cfm.parameters())
    stamp.write_text(json.dumps(want, indent=1), encoding="utf-8")
    return directory


def checkpoint_info(directory: Path) -> dict[str, Any]:
    return json.loads((directory / STAMP).read_text(encoding="utf-8"))
