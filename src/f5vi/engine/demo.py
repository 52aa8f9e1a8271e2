"""A tiny random-weight model in the exact upstream checkpoint layout, for trying the whole stack.

It loads and runs through every code path the real Vietnamese checkpoint uses, but its output
is noise. The directory carries a ``DEMO_MODEL`` marker so /health and the logs say so.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import torch

from f5vi.engine.bigvgan_io import save_random_bigvgan, tiny_bigvgan_config
from f5vi.engine.checkpoint import build_model, save_upstream_checkpoint
from f5vi.engine.model.configs import arch_from_config_dict
from f5vi.engine.vocoder import save_random_vocos

DEMO_MARKER = "DEMO_MODEL"
VOCODER_KINDS = ("vocos", "bigvgan")
ARCH_FILE = "f5vi_model.json"

_VIET_BASES = "aăâeêioôơuưy"
_TONE_MARKS = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")  # ngang, huyền, sắc, hỏi, ngã, nặng

DEMO_ARCH = {
    "backbone": "DiT",
    "arch": {
        "dim": 128,
        "depth": 4,
        "heads": 2,
        "ff_mult": 2,
        "text_dim": 64,
        "text_mask_padding": False,
        "conv_layers": 2,
        "pe_attn_head": 1,
    },
    "mel_dim": 100,
}


def demo_vocab() -> list[str]:
    """Space first (id 0, as upstream), then every character Vietnamese text needs, lowercase."""
    letters = set("abcdefghijklmnopqrstuvwxyzđ")
    for base in _VIET_BASES:
        for mark in _TONE_MARKS:
            letters.add(unicodedata.normalize("NFC", base + mark))
    punctuation = list(",.!?;:-'\"()")
    return [" ", *sorted(letters), *"0123456789", *punctuation]


def demo_vocoder_dir(directory: Path) -> Path:
    """The vocoder folder of a demo model: ``bigvgan/`` for a BigVGAN demo, else ``vocos/``."""
    return directory / "bigvgan" if (directory / "bigvgan").is_dir() else directory / "vocos"


def make_demo_model(directory: Path, *, seed: int = 0, vocoder: str = "vocos") -> Path:
    """Write checkpoint, vocab, arch description and a random vocoder into ``directory``.

    ``vocoder="bigvgan"``: the checkpoint's config says ``mel_spec_type: bigvgan`` and ``bigvgan/``
    holds a random BigVGAN in NVIDIA's layout (the published structure at 1/24 the width), so the
    pairing of upstream's ``F5TTS_Base_bigvgan`` with ``nvidia/bigvgan_v2_24khz_100band_256x`` can be
    tried end to end; ``"vocos"`` (default): ``vocos/`` holds a random Vocos.
    """
    if vocoder not in VOCODER_KINDS:
        raise ValueError(f"unknown vocoder {vocoder!r}; choose one of {', '.join(VOCODER_KINDS)}")
    directory.mkdir(parents=True, exist_ok=True)
    vocab = demo_vocab()
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    spec = dict(DEMO_ARCH, text_num_embeds=len(vocab), mel_spec={"mel_spec_type": vocoder})
    (directory / ARCH_FILE).write_text(json.dumps(spec, indent=1), encoding="utf-8")
    torch.manual_seed(seed)
    cfm = build_model(arch_from_config_dict(spec), text_num_embeds=len(vocab), mel_dim=100)
    with torch.no_grad():
        for parameter in cfm.parameters():
            parameter.normal_(0.0, 0.05)
    save_upstream_checkpoint(cfm, directory / "model_last.pt")
    if vocoder == "bigvgan":
        save_random_bigvgan(directory / "bigvgan", seed=seed, config=tiny_bigvgan_config())
    else:
        save_random_vocos(directory / "vocos", seed=seed)
    (directory / DEMO_MARKER).write_text(
        "Random weights: this model produces noise, not speech. For trying the service only.\n",
        encoding="utf-8",
    )
    return directory
