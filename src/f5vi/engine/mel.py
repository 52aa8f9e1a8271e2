"""Log-mel spectrogram in the "vocos" convention that F5-TTS checkpoints and Vocos were trained on.

Settings: 24 kHz, ``n_fft`` 1024, hop 256, window 1024 (Hann), 100 HTK mel bands from 0 Hz to Nyquist,
no filter-bank normalisation, centred frames with reflect padding, magnitude (power 1), then
``log(clamp(x, min=1e-5))``.

Layouts: :class:`LogMelSpectrogram` returns ``[B, n_mels, T]`` (channels first, what Vocos decodes);
the CFM/DiT works on ``[B, T, n_mels]``: convert with :func:`to_cfm_layout` / :func:`to_vocoder_layout`.
A wave of ``N`` samples gives ``T = N // hop + 1`` frames (see :func:`num_frames`).
"""

from __future__ import annotations

import numpy as np
import torch
import torchaudio
from torch import nn

from f5vi.engine.types import HOP_LENGTH, N_MELS, SAMPLE_RATE

N_FFT = 1024
WIN_LENGTH = 1024
F5_LOG_CLAMP = 1e-5
"""Floor before the log in F5-TTS's mel (Vocos' own feature extractor uses 1e-7)."""


class LogMelSpectrogram(nn.Module):
    """Wave ``[B, N]`` (or ``[N]`` / ``[B, 1, N]``) -> log-mel ``[B, n_mels, T]``, always float32.

    The torchaudio transform is kept as the attribute ``mel_spec`` so the state-dict keys are
    ``mel_spec.spectrogram.window`` and ``mel_spec.mel_scale.fb``: the same names the published Vocos
    checkpoint stores under ``feature_extractor.``, which lets the vocoder reuse this module.
    """

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        n_fft: int = N_FFT,
        hop_length: int = HOP_LENGTH,
        win_length: int = WIN_LENGTH,
        n_mels: int = N_MELS,
        clamp_min: float = F5_LOG_CLAMP,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.n_mels = n_mels
        self.clamp_min = clamp_min
        self.mel_spec = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            win_length=win_length,
            hop_length=hop_length,
            n_mels=n_mels,
            power=1.0,
            center=True,
            pad_mode="reflect",
            normalized=False,
            norm=None,
            mel_scale="htk",
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.ndim == 3:
            if wave.shape[1] != 1:
                raise ValueError(f"expected a mono wave [B, 1, N], got {tuple(wave.shape)}")
            wave = wave[:, 0]
        elif wave.ndim == 1:
            wave = wave.unsqueeze(0)
        elif wave.ndim != 2:
            raise ValueError(f"expected a wave [N], [B, N] or [B, 1, N], got {tuple(wave.shape)}")
        # The reference pipeline computes mels of float32 audio; half-precision STFTs are not supported
        # on every device and would not match the checkpoints' training features anyway.
        mel = self.mel_spec(wave.float())
        return torch.log(torch.clamp(mel, min=self.clamp_min))


def num_frames(num_samples: int, hop_length: int = HOP_LENGTH) -> int:
    """Number of mel frames of a wave with ``num_samples`` samples (centred framing)."""
    return num_samples // hop_length + 1


def to_cfm_layout(mel: torch.Tensor) -> torch.Tensor:
    """``[B, n_mels, T]`` -> ``[B, T, n_mels]`` (what the CFM/DiT consumes and produces)."""
    return mel.transpose(1, 2)


def to_vocoder_layout(mel: torch.Tensor) -> torch.Tensor:
    """``[B, T, n_mels]`` -> ``[B, n_mels, T]`` (what the vocoder decodes)."""
    return mel.transpose(1, 2)


def log_mel(wave: np.ndarray | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """Vocos-type log-mel of a 24 kHz wave (numpy or tensor, ``[N]`` or ``[B, N]``) -> ``[B, 100, T]``.

    A convenience for one-off use (a new extractor each call; it costs ~1 ms to build). Code that
    extracts repeatedly keeps its own :class:`LogMelSpectrogram`.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(wave)) if isinstance(wave, np.ndarray) else wave
    target = torch.device(device) if device is not None else tensor.device
    module = LogMelSpectrogram().to(target).eval()
    with torch.inference_mode():
        return module(tensor.to(target))
