"""Either vocoder behind one interface, chosen by its files, and the checkpoint/vocoder pairing check.

F5-TTS checkpoints are trained on one mel front end and need the vocoder trained on the same one:
"vocos" (``charactr/vocos-mel-24khz``, every checkpoint but one, the Vietnamese one included) or
"bigvgan" (``nvidia/bigvgan_v2_24khz_100band_256x``, upstream's ``F5TTS_Base_bigvgan``). The other
vocoder decodes such a mel into noise, so a mismatched pair is refused when the engine loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch

from f5vi.engine.bigvgan_io import DEFAULT_BIGVGAN, is_bigvgan_dir, load_bigvgan
from f5vi.engine.errors import ModelLoadError
from f5vi.engine.vocoder import load_vocoder

DEFAULT_SOURCES = {"vocos": "charactr/vocos-mel-24khz", "bigvgan": DEFAULT_BIGVGAN}


class MelVocoder(Protocol):
    """What the synthesizer needs of a vocoder (:class:`~f5vi.engine.vocoder.Vocoder`, :class:`BigVGAN`)."""

    kind: str
    """"vocos" | "bigvgan": the mel front end it decodes."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def hop_length(self) -> int: ...

    def decode(self, mel: torch.Tensor) -> torch.Tensor: ...

    def decode_many(self, mels: Sequence[torch.Tensor]) -> list[torch.Tensor]: ...


def vocoder_kind(source: str | Path) -> str:
    """ "bigvgan" for a directory in NVIDIA's layout or a repo id naming BigVGAN, else "vocos"."""
    path = Path(source).expanduser()
    if path.is_dir():
        return "bigvgan" if is_bigvgan_dir(path) else "vocos"
    return "bigvgan" if "bigvgan" in str(source).lower() else "vocos"


def load_mel_vocoder(
    source: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> MelVocoder:
    """Load a Vocos or a BigVGAN (see :func:`vocoder_kind`). BigVGAN always runs in float32, as upstream."""
    if vocoder_kind(source) == "bigvgan":
        return load_bigvgan(source, device=device)
    return load_vocoder(source, device=device, dtype=dtype)


def check_pairing(mel_spec_type: str, vocoder: MelVocoder, vocoder_source: str, model_source: str) -> None:
    """Refuse a checkpoint with the vocoder of the other mel front end (its audio would be noise)."""
    if vocoder.kind == mel_spec_type:
        return
    raise ModelLoadError(
        f"the checkpoint {model_source} was trained on the {mel_spec_type!r} mel and needs the "
        f"{mel_spec_type} vocoder, but F5VI_VOCODER={vocoder_source} is a {vocoder.kind} vocoder. "
        f"Set F5VI_VOCODER to a "
        f"{mel_spec_type} vocoder (e.g. {DEFAULT_SOURCES[mel_spec_type]} or a local directory), or point "
        f"F5VI_MODEL at a checkpoint trained for {vocoder.kind}"
        + (
            " (for upstream's F5TTS_Base_bigvgan checkpoint under another name, set "
            "F5VI_MODEL_ARCH=F5TTS_Base_bigvgan)."
            if vocoder.kind == "bigvgan"
            else "."
        )
    )
