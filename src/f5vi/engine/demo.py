"""A tiny random-weight model in the exact upstream checkpoint layout, for trying the whole stack.

It loads and runs through every code path the real Vietnamese checkpoint uses, but its output
is noise. The directory carries a ``DEMO_MODEL`` marker so /health and the logs say so.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import torch

from f5vi.engine.checkpoint import build_model, save_upstream_checkpoint
from f5vi.engine.model.configs import arch_from_config_dict
from f5vi.engine.vocoder import save_random_vocos

DEMO_MARKER = "DEMO_MODEL"
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


def make_demo_model(directory: Path, *, seed: int = 0) -> Path:
    """Write checkpoint, vocab, arch description and a random Vocos into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab = demo_vocab()
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    spec = dict(DEMO_ARCH, text_num_embeds=len(vocab))
    (directory / ARCH_FILE).write_text(json.dumps(spec, indent=1), encoding="utf-8")
    torch.manual_seed(seed)
    cfm = build_model(arch_from_config_dict(spec), text_num_embeds=len(vocab), mel_dim=100)
    with torch.no_grad():
        for parameter in cfm.parameters():
            parameter.normal_(0.0, 0.05)
    save_upstream_checkpoint(cfm, directory / "model_last.pt")
    save_random_vocos(directory / "vocos", seed=seed)
    (directory / DEMO_MARKER).write_text(
        "Random weights: this model produces noise, not speech. For trying the service only.\n",
        encoding="utf-8",
    )
    return directory
