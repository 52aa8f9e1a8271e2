"""Vocos mel vocoder (ConvNeXt backbone + ISTFT head), inference only, without the ``vocos`` package.

The module tree mirrors the published ``charactr/vocos-mel-24khz`` checkpoint so its
``pytorch_model.bin`` loads with identical keys, including the feature-extractor buffers
(``feature_extractor.mel_spec.spectrogram.window``, ``feature_extractor.mel_spec.mel_scale.fb``) which we
reproduce with :class:`~f5vi.engine.mel.LogMelSpectrogram`. Hyper-parameters come from the checkpoint's
``config.yaml`` (vocos' ``class_path``/``init_args`` layout); only the mel + VocosBackbone + ISTFTHead
variant is supported (not EnCodec features, AdaLayerNorm conditioning or the ResNet/IMDCT variants).

Sources for :func:`load_vocoder`: a local directory with ``config.yaml`` and ``pytorch_model.bin`` (or
``model.safetensors``), or a Hugging Face repo id (downloaded with ``hf_hub_download``; cached files
are used offline). Every failure is a :class:`~f5vi.engine.errors.ModelLoadError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from f5vi.engine.errors import ModelLoadError
from f5vi.engine.hub import download_vocoder_files
from f5vi.engine.mel import LogMelSpectrogram
from f5vi.engine.types import HOP_LENGTH, N_MELS, SAMPLE_RATE

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "pytorch_model.bin"
SAFETENSORS_FILE = "model.safetensors"
VOCOS_LOG_CLAMP = 1e-7
"""Floor before the log in Vocos' own feature extractor (F5-TTS' mel uses 1e-5)."""
MAX_MAGNITUDE = 100.0
"""Vocos clips predicted STFT magnitudes at 1e2 so a wild output cannot explode the waveform."""

_FEATURE_CLASS = "vocos.feature_extractors.MelSpectrogramFeatures"
_BACKBONE_CLASS = "vocos.models.VocosBackbone"
_HEAD_CLASS = "vocos.heads.ISTFTHead"


@dataclass(frozen=True)
class VocosConfig:
    """Hyper-parameters of a mel Vocos; defaults are those of ``charactr/vocos-mel-24khz``."""

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 1024
    hop_length: int = HOP_LENGTH
    n_mels: int = N_MELS
    input_channels: int = N_MELS
    dim: int = 512
    intermediate_dim: int = 1536
    num_layers: int = 8
    layer_scale_init_value: float | None = None
    head_n_fft: int = 1024
    head_hop_length: int = HOP_LENGTH
    head_padding: str = "same"

    def to_yaml_dict(self) -> dict[str, Any]:
        """The ``config.yaml`` content in the published layout (``vocos.Vocos.from_hparams`` reads it)."""
        backbone: dict[str, Any] = {
            "input_channels": self.input_channels,
            "dim": self.dim,
            "intermediate_dim": self.intermediate_dim,
            "num_layers": self.num_layers,
        }
        if self.layer_scale_init_value is not None:
            backbone["layer_scale_init_value"] = self.layer_scale_init_value
        return {
            "feature_extractor": {
                "class_path": _FEATURE_CLASS,
                "init_args": {
                    "sample_rate": self.sample_rate,
                    "n_fft": self.n_fft,
                    "hop_length": self.hop_length,
                    "n_mels": self.n_mels,
                    "padding": "center",
                },
            },
            "backbone": {"class_path": _BACKBONE_CLASS, "init_args": backbone},
            "head": {
                "class_path": _HEAD_CLASS,
                "init_args": {
                    "dim": self.dim,
                    "n_fft": self.head_n_fft,
                    "hop_length": self.head_hop_length,
                    "padding": self.head_padding,
                },
            },
        }

    @classmethod
    def from_yaml_dict(cls, raw: Any, origin: str = "config.yaml") -> VocosConfig:
        """Parse and validate a vocos ``config.yaml`` mapping; unsupported variants -> ModelLoadError."""
        if not isinstance(raw, dict):
            raise ModelLoadError(f"{origin}: expected a mapping with feature_extractor/backbone/head")
        sections: dict[str, dict[str, Any]] = {}
        for name, expected in (
            ("feature_extractor", _FEATURE_CLASS),
            ("backbone", _BACKBONE_CLASS),
            ("head", _HEAD_CLASS),
        ):
            section = raw.get(name)
            if not isinstance(section, dict):
                raise ModelLoadError(f"{origin}: missing section {name!r}")
            class_path = section.get("class_path")
            if class_path != expected:
                raise ModelLoadError(
                    f"{origin}: unsupported {name} {class_path!r}; f5vi supports only the mel Vocos "
                    f"({_FEATURE_CLASS} + {_BACKBONE_CLASS} + {_HEAD_CLASS})"
                )
            args = section.get("init_args") or {}
            if not isinstance(args, dict):
                raise ModelLoadError(f"{origin}: {name}.init_args must be a mapping")
            sections[name] = args
        fe, bb, hd = sections["feature_extractor"], sections["backbone"], sections["head"]
        if bb.get("adanorm_num_embeddings") is not None:
            raise ModelLoadError(f"{origin}: AdaLayerNorm-conditioned (EnCodec) Vocos is not supported")
        if fe.get("padding", "center") != "center":
            raise ModelLoadError(f"{origin}: only feature_extractor padding 'center' is supported")
        try:
            config = cls(
                sample_rate=int(fe.get("sample_rate", 24_000)),
                n_fft=int(fe.get("n_fft", 1024)),
                hop_length=int(fe.get("hop_length", 256)),
                n_mels=int(fe.get("n_mels", 100)),
                input_channels=int(bb["input_channels"]),
                dim=int(bb["dim"]),
                intermediate_dim=int(bb["intermediate_dim"]),
                num_layers=int(bb["num_layers"]),
                layer_scale_init_value=(
                    float(bb["layer_scale_init_value"])
                    if bb.get("layer_scale_init_value") is not None
                    else None
                ),
                head_n_fft=int(hd["n_fft"]),
                head_hop_length=int(hd["hop_length"]),
                head_padding=str(hd.get("padding", "same")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{origin}: invalid or missing hyper-parameter: {exc}") from exc
        if int(hd.get("dim", config.dim)) != config.dim:
            raise ModelLoadError(f"{origin}: head.dim {hd.get('dim')} != backbone.dim {config.dim}")
        if config.head_padding not in ("same", "center"):
            raise ModelLoadError(
                f"{origin}: head padding must be 'same' or 'center', got {config.head_padding!r}"
            )
        if config.input_channels != config.n_mels:
            raise ModelLoadError(
                f"{origin}: backbone input_channels {config.input_channels} != n_mels {config.n_mels}"
            )
        return config


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (k=7), LayerNorm, Linear, GELU, Linear, layer scale, residual; on ``[B, C, T]``."""

    def __init__(self, dim: int, intermediate_dim: int, layer_scale: float) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x).transpose(1, 2)
        h = self.pwconv2(self.act(self.pwconv1(self.norm(h))))
        return x + (self.gamma * h).transpose(1, 2)


class VocosBackbone(nn.Module):
    """Mel ``[B, n_mels, T]`` -> hidden ``[B, T, dim]``; the time resolution never changes."""

    def __init__(self, config: VocosConfig) -> None:
        super().__init__()
        self.embed = nn.Conv1d(config.input_channels, config.dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(config.dim, eps=1e-6)
        layer_scale = config.layer_scale_init_value or 1.0 / config.num_layers
        self.convnext = nn.ModuleList(
            ConvNeXtBlock(config.dim, config.intermediate_dim, layer_scale) for _ in range(config.num_layers)
        )
        self.final_layer_norm = nn.LayerNorm(config.dim, eps=1e-6)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.embed(mel).transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))


class ISTFT(nn.Module):
    """Inverse STFT by windowed overlap-add, with "same" padding (output length ``T * hop``).

    ``torch.istft`` only supports centred frames (its NOLA check fails at the edges otherwise), so the
    overlap-add is done with ``fold`` and divided by the summed squared window; ``(win - hop) / 2``
    samples are dropped at each end, where the envelope is incomplete.
    """

    def __init__(self, n_fft: int, hop_length: int, padding: str = "same") -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.padding = padding
        self.window: torch.Tensor
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        if self.padding == "center":
            return torch.istft(spec, self.n_fft, self.hop_length, self.n_fft, self.window, center=True)
        batch, _, frames = spec.shape
        window = self.window.to(torch.float32)
        segments = torch.fft.irfft(spec, n=self.n_fft, dim=1) * window[None, :, None]  # [B, n_fft, T]
        total = (frames - 1) * self.hop_length + self.n_fft
        fold_args = {
            "output_size": (1, total),
            "kernel_size": (1, self.n_fft),
            "stride": (1, self.hop_length),
        }
        summed = nn.functional.fold(segments, **fold_args).reshape(batch, total)
        squared = window.square()[None, :, None].expand(1, self.n_fft, frames)
        envelope = nn.functional.fold(squared, **fold_args).reshape(total)
        trim = (self.n_fft - self.hop_length) // 2
        return summed[:, trim : total - trim] / envelope[trim : total - trim]


class ISTFTHead(nn.Module):
    """Hidden ``[B, T, dim]`` -> log-magnitude and phase per bin -> complex STFT -> wave ``[B, T * hop]``."""

    def __init__(self, dim: int, n_fft: int, hop_length: int, padding: str) -> None:
        super().__init__()
        self.out = nn.Linear(dim, n_fft + 2)
        self.istft = ISTFT(n_fft, hop_length, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Whatever dtype the backbone ran in, exp/phase/irfft run in float32 (fp16 exp overflows and
        # complex-half FFTs are poorly supported).
        coeffs = self.out(x).float().transpose(1, 2)
        log_mag, phase = coeffs.chunk(2, dim=1)
        magnitude = torch.clamp(torch.exp(log_mag), max=MAX_MAGNITUDE)
        return self.istft(torch.polar(magnitude, phase))


class Vocoder(nn.Module):
    """Mel Vocos. ``decode(mel [B, n_mels, T]) -> wave [B, T * hop]`` at ``sample_rate``."""

    kind = "vocos"

    def __init__(self, config: VocosConfig | None = None) -> None:
        super().__init__()
        self.config = config or VocosConfig()
        c = self.config
        # Its only registered child is ``mel_spec``: keys ``feature_extractor.mel_spec.*`` as published.
        self.feature_extractor = LogMelSpectrogram(
            sample_rate=c.sample_rate,
            n_fft=c.n_fft,
            hop_length=c.hop_length,
            win_length=c.n_fft,
            n_mels=c.n_mels,
            clamp_min=VOCOS_LOG_CLAMP,
        )
        self.backbone = VocosBackbone(c)
        self.head = ISTFTHead(c.dim, c.head_n_fft, c.head_hop_length, c.head_padding)

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.head_hop_length

    @property
    def device(self) -> torch.device:
        return self.head.out.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.head.out.weight.dtype

    @torch.inference_mode()
    def decode(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[B, n_mels, T]`` (any float dtype/device) -> float32 wave ``[B, T * hop]``.

        Every item of a batch must really be ``T`` frames long: the convolutions see about 30 frames
        on either side, so padding a shorter item changes the end of its audio. Use
        :meth:`decode_many` for items of different lengths.
        """
        if mel.ndim != 3 or mel.shape[1] != self.config.input_channels:
            raise ValueError(f"expected mel [B, {self.config.input_channels}, T], got {tuple(mel.shape)}")
        hidden = self.backbone(mel.to(device=self.device, dtype=self.dtype))
        return self.head(hidden)

    def decode_many(self, mels: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Decode mels ``[n_mels, T_i]`` of possibly different lengths; returns waves ``[T_i * hop]``.

        Items with the same length share one batched call; results are exactly what decoding each
        item alone gives (no padding ever reaches the convolutions).
        """
        by_length: dict[int, list[int]] = {}
        for index, mel in enumerate(mels):
            by_length.setdefault(int(mel.shape[-1]), []).append(index)
        waves: list[torch.Tensor | None] = [None] * len(mels)
        for indices in by_length.values():
            batch = torch.stack([mels[i].to(self.device) for i in indices])
            for i, wave in zip(indices, self.decode(batch), strict=True):
                waves[i] = wave
        return [w for w in waves if w is not None]

    @torch.inference_mode()
    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """Vocos' own analysis features of a wave ``[B, N]`` (copy synthesis: ``decode(features(w))``)."""
        return self.feature_extractor(wave.to(self.device))


# --------------------------------------------------------------------------------------------------
# Loading and saving


def load_vocoder(
    source: str | Path,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Vocoder:
    """Load a Vocos from a local directory or a Hugging Face repo id (see the module docstring).

    ``dtype`` applies to the backbone; the ISTFT always runs in float32. The vocoder must produce
    f5vi's audio format (24 kHz, hop 256, 100 mels), otherwise ModelLoadError.
    """
    config_path, weights_path = _resolve_files(source)
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelLoadError(f"cannot read vocoder config {config_path}: {exc}") from exc
    config = VocosConfig.from_yaml_dict(raw, origin=str(config_path))
    expected = (SAMPLE_RATE, HOP_LENGTH, N_MELS)
    actual = (config.sample_rate, config.head_hop_length, config.n_mels)
    if actual != expected or config.hop_length != config.head_hop_length:
        raise ModelLoadError(
            f"vocoder {source} produces sample_rate/hop/n_mels {actual}; f5vi needs {expected}"
        )
    model = Vocoder(config)
    _load_weights(model, weights_path)
    try:
        model = model.to(device=torch.device(device))
    except (RuntimeError, AssertionError) as exc:
        raise ModelLoadError(f"cannot move vocoder to {device}: {exc}") from exc
    # Only the learned layers change dtype: the Hann windows and mel filters stay float32.
    model.backbone.to(dtype)
    model.head.out.to(dtype)
    return model.eval()


def _resolve_files(source: str | Path) -> tuple[Path, Path]:
    path = Path(source).expanduser()
    if path.is_dir():
        config_path = path / CONFIG_FILE
        weights = [path / WEIGHTS_FILE, path / SAFETENSORS_FILE]
        found = next((w for w in weights if w.is_file()), None)
        if not config_path.is_file() or found is None:
            raise ModelLoadError(
                f"vocoder directory {path} must contain {CONFIG_FILE} and {WEIGHTS_FILE} "
                f"(or {SAFETENSORS_FILE}); set F5VI_VOCODER to such a directory"
            )
        return config_path, found
    text = str(source)
    if path.exists() or text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text:
        raise ModelLoadError(
            f"vocoder source {text!r} is not a directory (expected a directory or a repo id); "
            "fix F5VI_VOCODER"
        )
    config_file, weights_file = download_vocoder_files(text, (CONFIG_FILE, WEIGHTS_FILE), "vocoder")
    return config_file, weights_file


_DETERMINISTIC_BUFFERS = (
    "feature_extractor.mel_spec.spectrogram.window",
    "feature_extractor.mel_spec.mel_scale.fb",
    "head.istft.window",
)


def _load_weights(model: Vocoder, path: Path) -> None:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip/safetensors errors have no common base class
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(f"cannot read vocoder weights {path}: {first_line}") from exc
    if not isinstance(state, dict):
        raise ModelLoadError(f"{path}: expected a state dict, got {type(state).__name__}")
    own = model.state_dict()
    unexpected = sorted(set(state) - set(own))
    # The checkpoint's analysis buffers are optional: they are fixed functions of the config.
    missing = sorted(k for k in set(own) - set(state) if k not in _DETERMINISTIC_BUFFERS)
    if unexpected or missing:
        raise ModelLoadError(
            f"{path} does not match the configured Vocos: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    wrong = [
        f"{k} {tuple(v.shape)} != {tuple(own[k].shape)}"
        for k, v in state.items()
        if not isinstance(v, torch.Tensor) or v.shape != own[k].shape
    ]
    if wrong:
        raise ModelLoadError(
            f"{path} does not match the hyper-parameters in its config ({len(wrong)} tensors differ, "
            f"e.g. {'; '.join(wrong[:3])})"
        )
    model.load_state_dict(state, strict=False)


def save_random_vocos(directory: str | Path, seed: int = 0, config: VocosConfig | None = None) -> Path:
    """Write a freshly initialised Vocos (``config.yaml`` + ``pytorch_model.bin``) in the published layout.

    Initialisation follows Vocos training (truncated normal std 0.02 for conv/linear weights, zero
    biases, unit norms, layer scale ``1/num_layers``), seeded, so the files are reproducible. Used for
    tests and the demo model; it makes noise, not speech.
    """
    config = config or VocosConfig()
    model = Vocoder(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv1d | nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02, generator=generator)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(yaml.safe_dump(config.to_yaml_dict(), sort_keys=False), encoding="utf-8")
    torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, out / WEIGHTS_FILE)
    return out
