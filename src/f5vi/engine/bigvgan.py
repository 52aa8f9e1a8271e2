"""NVIDIA BigVGAN v2 generator (mel -> 24 kHz wave), inference only, without the ``bigvgan`` package.

The module tree mirrors NVIDIA's ``bigvgan.BigVGAN`` so the published ``bigvgan_generator.pt``
(``{"generator": state_dict}``) loads with identical key names: ``conv_pre``, ``ups.<i>.0``,
``resblocks.<i>.convs1/convs2/activations``, ``activation_post``, ``conv_post``. Checkpoints store
convolutions with weight normalisation (``weight_g`` / ``weight_v``); :mod:`f5vi.engine.bigvgan_io`
folds each pair into one plain ``weight`` once at load time (``g * v / ||v||``, as
``torch.nn.utils.remove_weight_norm`` does), so inference runs plain convolutions.

Pieces (names as upstream): AMP blocks (``AMPBlock1``: dilated conv + conv per dilation, each after an
anti-aliased activation; ``AMPBlock2``: one conv per dilation), Snake / SnakeBeta activations whose
``alpha``/``beta`` are stored in log scale when ``snake_logscale`` is set, and ``Activation1d``: 2x
upsample (Kaiser-windowed sinc filter, transposed conv), activation, 2x low-pass downsample. The CUDA
fused kernel of the reference implementation is not reproduced: the torch path is what it checks against.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from f5vi.engine.errors import ModelLoadError

SNAKE_EPS = 1e-9
"""Upstream's ``no_div_by_zero`` in Snake/SnakeBeta."""


@dataclass(frozen=True)
class BigVGANConfig:
    """The ``config.json`` fields that shape the generator; defaults are ``bigvgan_v2_24khz_100band_256x``."""

    num_mels: int = 100
    upsample_rates: tuple[int, ...] = (4, 4, 2, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (8, 8, 4, 4, 4, 4)
    upsample_initial_channel: int = 1536
    resblock: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    activation: str = "snakebeta"
    snake_logscale: bool = True
    use_tanh_at_final: bool = False
    use_bias_at_final: bool = False
    sampling_rate: int = 24_000
    hop_size: int = 256
    n_fft: int = 1024
    win_size: int = 1024
    fmin: int = 0
    fmax: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    """Every other key of ``config.json`` (training settings), kept so a saved config round-trips."""

    @property
    def upsample_factor(self) -> int:
        return math.prod(self.upsample_rates)

    def to_json_dict(self) -> dict[str, Any]:
        """The ``config.json`` mapping in NVIDIA's layout."""
        out: dict[str, Any] = dict(self.extra)
        out.update(
            resblock=self.resblock,
            upsample_rates=list(self.upsample_rates),
            upsample_kernel_sizes=list(self.upsample_kernel_sizes),
            upsample_initial_channel=self.upsample_initial_channel,
            resblock_kernel_sizes=list(self.resblock_kernel_sizes),
            resblock_dilation_sizes=[list(d) for d in self.resblock_dilation_sizes],
            activation=self.activation,
            snake_logscale=self.snake_logscale,
            use_tanh_at_final=self.use_tanh_at_final,
            use_bias_at_final=self.use_bias_at_final,
            num_mels=self.num_mels,
            n_fft=self.n_fft,
            hop_size=self.hop_size,
            win_size=self.win_size,
            sampling_rate=self.sampling_rate,
            fmin=self.fmin,
            fmax=self.fmax,
        )
        return out

    @classmethod
    def from_json_dict(cls, raw: Any, origin: str = "config.json") -> BigVGANConfig:
        """Parse NVIDIA's ``config.json``; anything the generator cannot be built from -> ModelLoadError."""
        if not isinstance(raw, dict) or "upsample_rates" not in raw:
            raise ModelLoadError(f"{origin}: not a BigVGAN config (no upsample_rates)")
        known = set(cls.__dataclass_fields__) - {"extra"}
        try:
            config = cls(
                num_mels=int(raw["num_mels"]),
                upsample_rates=tuple(int(u) for u in raw["upsample_rates"]),
                upsample_kernel_sizes=tuple(int(k) for k in raw["upsample_kernel_sizes"]),
                upsample_initial_channel=int(raw["upsample_initial_channel"]),
                resblock=str(raw.get("resblock", "1")),
                resblock_kernel_sizes=tuple(int(k) for k in raw["resblock_kernel_sizes"]),
                resblock_dilation_sizes=tuple(
                    tuple(int(d) for d in ds) for ds in raw["resblock_dilation_sizes"]
                ),
                activation=str(raw["activation"]),
                snake_logscale=bool(raw.get("snake_logscale", True)),
                use_tanh_at_final=bool(raw.get("use_tanh_at_final", True)),
                use_bias_at_final=bool(raw.get("use_bias_at_final", True)),
                sampling_rate=int(raw["sampling_rate"]),
                hop_size=int(raw["hop_size"]),
                n_fft=int(raw["n_fft"]),
                win_size=int(raw["win_size"]),
                fmin=int(raw.get("fmin", 0)),
                fmax=None if raw.get("fmax") is None else int(raw["fmax"]),
                extra={k: v for k, v in raw.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{origin}: invalid or missing BigVGAN hyper-parameter: {exc}") from exc
        if config.resblock not in ("1", "2"):
            raise ModelLoadError(f"{origin}: resblock must be '1' or '2', got {config.resblock!r}")
        if config.activation not in ("snake", "snakebeta"):
            raise ModelLoadError(
                f"{origin}: activation must be snake or snakebeta, got {config.activation!r}"
            )
        if len(config.upsample_rates) != len(config.upsample_kernel_sizes):
            raise ModelLoadError(f"{origin}: upsample_rates and upsample_kernel_sizes differ in length")
        if len(config.resblock_kernel_sizes) != len(config.resblock_dilation_sizes):
            raise ModelLoadError(
                f"{origin}: resblock_kernel_sizes and resblock_dilation_sizes differ in length"
            )
        if config.upsample_factor != config.hop_size:
            raise ModelLoadError(
                f"{origin}: upsample factor {config.upsample_factor} != hop_size {config.hop_size}"
            )
        return config


# --------------------------------------------------------------------------------------------------
# Anti-aliased activation


def kaiser_sinc_filter1d(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Low-pass FIR ``[1, 1, kernel_size]``: a sinc at ``cutoff`` under a Kaiser window, summing to 1.

    The Kaiser ``beta`` follows from the transition band (``4 * half_width``) with the usual
    attenuation formula, exactly as the reference ``kaiser_sinc_filter1d``.
    """
    even = kernel_size % 2 == 0
    half_size = kernel_size // 2
    delta_f = 4 * half_width
    attenuation = 2.285 * (half_size - 1) * math.pi * delta_f + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False)
    time = torch.arange(-half_size, half_size) + 0.5 if even else torch.arange(kernel_size) - half_size
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    taps /= taps.sum()
    return taps.view(1, 1, kernel_size)


class LowPassFilter1d(nn.Module):
    """Depthwise FIR low-pass with replicate padding and a stride (the downsampler's filter)."""

    filter: torch.Tensor

    def __init__(self, cutoff: float, half_width: float, stride: int, kernel_size: int) -> None:
        super().__init__()
        even = kernel_size % 2 == 0
        self.pad_left = kernel_size // 2 - int(even)
        self.pad_right = kernel_size // 2
        self.stride = stride
        self.filter: torch.Tensor
        self.register_buffer("filter", kaiser_sinc_filter1d(cutoff, half_width, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(channels, -1, -1), stride=self.stride, groups=channels)


class UpSample1d(nn.Module):
    """``ratio``x upsampling: zero-stuffing transposed conv with the sinc filter, edges replicated."""

    filter: torch.Tensor

    def __init__(self, ratio: int = 2, kernel_size: int = 12) -> None:
        super().__init__()
        self.ratio = ratio
        self.pad = kernel_size // ratio - 1
        self.pad_left = self.pad * ratio + (kernel_size - ratio) // 2
        self.pad_right = self.pad * ratio + (kernel_size - ratio + 1) // 2
        self.filter: torch.Tensor
        self.register_buffer("filter", kaiser_sinc_filter1d(0.5 / ratio, 0.6 / ratio, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(
            x, self.filter.expand(channels, -1, -1), stride=self.ratio, groups=channels
        )
        return x[..., self.pad_left : -self.pad_right]


class DownSample1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int = 12) -> None:
        super().__init__()
        self.lowpass = LowPassFilter1d(0.5 / ratio, 0.6 / ratio, ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


class Snake(nn.Module):
    """``x + 1/alpha * sin(alpha x)^2`` per channel; ``alpha`` stored as its log when ``logscale``."""

    def __init__(self, channels: int, logscale: bool) -> None:
        super().__init__()
        self.logscale = logscale
        self.alpha = nn.Parameter(torch.zeros(channels) if logscale else torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha[None, :, None]
        if self.logscale:
            alpha = torch.exp(alpha)
        return x + (1.0 / (alpha + SNAKE_EPS)) * torch.sin(x * alpha).pow(2)


class SnakeBeta(nn.Module):
    """``x + 1/beta * sin(alpha x)^2``: Snake with a separate magnitude ``beta`` (log scale optional)."""

    def __init__(self, channels: int, logscale: bool) -> None:
        super().__init__()
        self.logscale = logscale
        init = torch.zeros(channels) if logscale else torch.ones(channels)
        self.alpha = nn.Parameter(init.clone())
        self.beta = nn.Parameter(init.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha[None, :, None]
        beta = self.beta[None, :, None]
        if self.logscale:
            alpha, beta = torch.exp(alpha), torch.exp(beta)
        return x + (1.0 / (beta + SNAKE_EPS)) * torch.sin(x * alpha).pow(2)


class Activation1d(nn.Module):
    """Upsample 2x, activate, downsample 2x: the periodic nonlinearity without aliasing."""

    def __init__(self, activation: nn.Module) -> None:
        super().__init__()
        self.act = activation
        self.upsample = UpSample1d(2, 12)
        self.downsample = DownSample1d(2, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


def _activation(config: BigVGANConfig, channels: int) -> Activation1d:
    cls = Snake if config.activation == "snake" else SnakeBeta
    return Activation1d(cls(channels, config.snake_logscale))


def _padding(kernel_size: int, dilation: int) -> int:
    return (kernel_size * dilation - dilation) // 2


# --------------------------------------------------------------------------------------------------
# Generator


class AMPBlock1(nn.Module):
    """Per dilation: act -> dilated conv -> act -> conv, added to the input."""

    def __init__(self, config: BigVGANConfig, channels: int, kernel: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=_padding(kernel, d)) for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, padding=_padding(kernel, 1)) for _ in dilations
        )
        self.activations = nn.ModuleList(_activation(config, channels) for _ in range(2 * len(dilations)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acts1, acts2 = self.activations[::2], self.activations[1::2]
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, acts1, acts2, strict=True):
            x = x + c2(a2(c1(a1(x))))
        return x


class AMPBlock2(nn.Module):
    """Per dilation: act -> dilated conv, added to the input."""

    def __init__(self, config: BigVGANConfig, channels: int, kernel: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=_padding(kernel, d)) for d in dilations
        )
        self.activations = nn.ModuleList(_activation(config, channels) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, act in zip(self.convs, self.activations, strict=True):
            x = x + conv(act(x))
        return x


class BigVGAN(nn.Module):
    """Mel ``[B, num_mels, T]`` -> wave ``[B, T * hop]``; always float32 (upstream runs it so)."""

    kind = "bigvgan"

    def __init__(self, config: BigVGANConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or BigVGANConfig()
        self.num_kernels = len(c.resblock_kernel_sizes)
        self.conv_pre = nn.Conv1d(c.num_mels, c.upsample_initial_channel, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        block = AMPBlock1 if c.resblock == "1" else AMPBlock2
        channels = c.upsample_initial_channel
        for i, (rate, kernel) in enumerate(zip(c.upsample_rates, c.upsample_kernel_sizes, strict=True)):
            channels = c.upsample_initial_channel // (2 ** (i + 1))
            wider = c.upsample_initial_channel // (2**i)
            up = nn.ConvTranspose1d(wider, channels, kernel, rate, padding=(kernel - rate) // 2)
            self.ups.append(nn.ModuleList([up]))
            for k, dilations in zip(c.resblock_kernel_sizes, c.resblock_dilation_sizes, strict=True):
                self.resblocks.append(block(c, channels, k, dilations))
        self.activation_post = _activation(c, channels)
        self.conv_post = nn.Conv1d(channels, 1, 7, 1, padding=3, bias=c.use_bias_at_final)

    @property
    def sample_rate(self) -> int:
        return self.config.sampling_rate

    @property
    def hop_length(self) -> int:
        return self.config.hop_size

    @property
    def num_mels(self) -> int:
        return self.config.num_mels

    @property
    def device(self) -> torch.device:
        return self.conv_pre.weight.device

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        for i, ups in enumerate(self.ups):
            for up in cast(nn.ModuleList, ups):
                x = up(x)
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for blk in blocks[1:]:
                xs = xs + blk(x)
            x = xs / self.num_kernels
        x = self.conv_post(self.activation_post(x))
        return torch.tanh(x) if self.config.use_tanh_at_final else torch.clamp(x, -1.0, 1.0)

    @torch.inference_mode()
    def decode(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[B, num_mels, T]`` (BigVGAN mel convention) -> float32 wave ``[B, T * hop]``.

        As with Vocos, every item must really be ``T`` frames long (padding changes its ending):
        use :meth:`decode_many` for items of different lengths.
        """
        if mel.ndim != 3 or mel.shape[1] != self.config.num_mels:
            raise ValueError(f"expected mel [B, {self.config.num_mels}, T], got {tuple(mel.shape)}")
        return self(mel.to(device=self.device, dtype=torch.float32))[:, 0]

    def decode_many(self, mels: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Decode mels ``[num_mels, T_i]``; equal lengths share a batched call (no padding)."""
        by_length: dict[int, list[int]] = {}
        for index, mel in enumerate(mels):
            by_length.setdefault(int(mel.shape[-1]), []).append(index)
        waves: list[torch.Tensor | None] = [None] * len(mels)
        for indices in by_length.values():
            batch = torch.stack([mels[i].to(self.device) for i in indices])
            for i, wave in zip(indices, self.decode(batch), strict=True):
                waves[i] = wave
        return [w for w in waves if w is not None]
