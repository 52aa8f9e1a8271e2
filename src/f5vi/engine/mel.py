"""Log-mel spectrogram in the "vocos" convention that F5-TTS checkpoints and Vocos were trained on.

Settings: 24 kHz, ``n_fft`` 1024, hop 256, window 1024 (Hann), 100 HTK mel bands from 0 Hz to Nyquist,
no filter-bank normalisation, centred frames with reflect padding, magnitude (power 1), then
``log(clamp(x, min=1e-5))``.

Layouts: :class:`LogMelSpectrogram` returns ``[B, n_mels, T]`` (channels first, what Vocos decodes);
the CFM/DiT works on ``[B, T, n_mels]``: convert with :func:`to_cfm_layout` / :func:`to_vocoder_layout`.
A wave of ``N`` samples gives ``T = N // hop + 1`` frames (see :func:`num_frames`).
"""

from __future__ import annotations

from typing import Literal

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


# --------------------------------------------------------------------------------------------------
# The "bigvgan" convention (upstream ``get_bigvgan_mel_spectrogram``)

BIGVGAN_MAGNITUDE_EPS = 1e-9
"""Added to ``re² + im²`` before the square root (upstream's BigVGAN mel)."""


def _hz_to_slaney_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, ``htk=False``): linear below 1 kHz, logarithmic above."""
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    mels = freq / f_sp
    above = freq >= min_log_hz
    mels[above] = min_log_mel + np.log(freq[above] / min_log_hz) / logstep
    return mels


def _slaney_mel_to_hz(mels: np.ndarray) -> np.ndarray:
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    freqs = f_sp * mels
    above = mels >= min_log_mel
    freqs[above] = min_log_hz * np.exp(logstep * (mels[above] - min_log_mel))
    return freqs


def slaney_mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> torch.Tensor:
    """``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)`` (Slaney scale and area normalisation).

    Computed in float64 as librosa does, returned as float32 ``[n_mels, n_fft // 2 + 1]`` (upstream
    casts librosa's matrix with ``.float()``), so librosa is not needed at run time.
    """
    fmax = sample_rate / 2 if fmax is None else float(fmax)
    fft_freqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    mel_points = np.linspace(
        _hz_to_slaney_mel(np.array([fmin], dtype=np.float64))[0],
        _hz_to_slaney_mel(np.array([fmax], dtype=np.float64))[0],
        n_mels + 2,
    )
    mel_freqs = _slaney_mel_to_hz(mel_points)
    fdiff = np.diff(mel_freqs)
    ramps = np.subtract.outer(mel_freqs, fft_freqs)
    weights = np.zeros((n_mels, len(fft_freqs)), dtype=np.float64)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2 : n_mels + 2] - mel_freqs[:n_mels]))[:, None]
    return torch.from_numpy(weights.astype(np.float32))


class BigVGANMelSpectrogram(nn.Module):
    """Wave -> log-mel ``[B, n_mels, T]`` as upstream's ``get_bigvgan_mel_spectrogram`` (BigVGAN's training
    features): Slaney mel filters, reflect padding of ``(n_fft - hop) / 2`` on each side, ``center=False``,
    magnitude ``sqrt(re² + im² + 1e-9)``, ``log(clamp(x, 1e-5))``. ``N`` samples give ``N // hop`` frames.
    Always float32.
    """

    mel_basis: torch.Tensor
    window: torch.Tensor

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        n_fft: int = N_FFT,
        hop_length: int = HOP_LENGTH,
        win_length: int = WIN_LENGTH,
        n_mels: int = N_MELS,
        fmin: float = 0.0,
        fmax: float | None = None,
    ) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.mel_basis: torch.Tensor
        self.register_buffer("mel_basis", slaney_mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax))
        self.window: torch.Tensor
        self.register_buffer("window", torch.hann_window(win_length))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.ndim == 3:
            wave = wave[:, 0]
        elif wave.ndim == 1:
            wave = wave.unsqueeze(0)
        padding = (self.n_fft - self.hop_length) // 2
        padded = nn.functional.pad(wave.float().unsqueeze(1), (padding, padding), mode="reflect").squeeze(1)
        spec = torch.stft(
            padded,
            self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=False,
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        magnitude = torch.sqrt(torch.view_as_real(spec).pow(2).sum(-1) + BIGVGAN_MAGNITUDE_EPS)
        return torch.log(torch.clamp(torch.matmul(self.mel_basis, magnitude), min=F5_LOG_CLAMP))


MelSpecType = Literal["vocos", "bigvgan"]
MEL_SPEC_TYPES: tuple[MelSpecType, ...] = ("vocos", "bigvgan")


def mel_extractor(mel_spec_type: MelSpecType | str) -> nn.Module:
    """The reference-mel front end a checkpoint was trained with (``mel_spec_type`` of its config)."""
    if mel_spec_type == "bigvgan":
        return BigVGANMelSpectrogram()
    if mel_spec_type == "vocos":
        return LogMelSpectrogram()
    raise ValueError(f"unknown mel_spec_type {mel_spec_type!r}; expected one of {', '.join(MEL_SPEC_TYPES)}")
