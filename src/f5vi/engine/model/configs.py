"""Architecture presets of the upstream F5-TTS / E2-TTS checkpoints, and recognition from a state dict.

The presets mirror upstream's ``configs/*.yaml`` ``model.arch`` sections (commit 2ae2c9b). Fields that only
matter for training (dropout, checkpoint_activations, attention backend) are not represented: inference
here always uses PyTorch's ``scaled_dot_product_attention``.

v0 versus v1
------------
``F5TTS_Base`` (v0, the architecture of the Vietnamese checkpoint) and ``F5TTS_v1_Base`` have *identical*
parameter names and shapes; they differ only in two behavioural flags:

* ``text_mask_padding`` (v0 False, v1 True): v1 zeroes filler/padding text positions between the ConvNeXt
  blocks of the text encoder;
* ``pe_attn_head`` (v0 1, v1 None): v0 applies rotary position embedding to the first attention head only.

Nothing in a checkpoint records these flags, so :func:`infer_arch` cannot read them from shapes. It decides
by a *name hint* (the checkpoint path or hub repo id, which upstream names ``F5TTS_v1_Base/...`` for v1):
a hint containing ``v1`` selects the v1 flags, anything else the v0 flags. v0 is the default because every
community fine-tune of ``F5TTS_Base`` we serve (the Vietnamese ``hynt/F5-TTS-Vietnamese-ViVoice`` included) is
v0. When in doubt, pass the preset name explicitly (``F5VI_MODEL_ARCH``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

Backbone = Literal["DiT", "UNetT"]
SkipConnectType = Literal["add", "concat", "none"]


@dataclass(frozen=True)
class ModelArch:
    """Hyper-parameters of one backbone, named as upstream's ``DiT`` / ``UNetT`` constructor arguments."""

    backbone: Backbone
    dim: int
    depth: int
    heads: int
    ff_mult: int = 4
    dim_head: int = 64
    text_dim: int | None = None  # None: same as mel_dim (upstream default)
    conv_layers: int = 0
    text_mask_padding: bool = True
    qk_norm: str | None = None  # None | "rms_norm"
    pe_attn_head: int | None = None  # rotary on the first N heads only; None: all heads
    long_skip_connection: bool = False  # DiT only
    skip_connect_type: SkipConnectType = "concat"  # UNetT only
    # Upstream (2ae2c9b) DiT/UNetT default ``attn_mask_enabled=False``: padded frames of a batch are *not*
    # masked out as attention keys (the output is still zeroed at padded frames). Kept configurable.
    attn_mask_enabled: bool = False

    def __post_init__(self) -> None:
        if self.backbone not in ("DiT", "UNetT"):
            raise ValueError(f"unknown backbone {self.backbone!r}")
        if self.backbone == "UNetT" and self.depth % 2:
            raise ValueError("UNetT depth must be even")
        if self.qk_norm not in (None, "rms_norm"):
            raise ValueError(f"unsupported qk_norm {self.qk_norm!r}")
        if self.skip_connect_type not in ("add", "concat", "none"):
            raise ValueError(f"unsupported skip_connect_type {self.skip_connect_type!r}")

    def backbone_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the backbone class (:class:`DiT` or :class:`UNetT`)."""
        kw = asdict(self)
        del kw["backbone"]
        if self.backbone == "DiT":
            del kw["skip_connect_type"]
        else:
            del kw["long_skip_connection"]
        return kw


ARCHS: dict[str, ModelArch] = {
    "F5TTS_Base": ModelArch(
        backbone="DiT",
        dim=1024,
        depth=22,
        heads=16,
        ff_mult=2,
        text_dim=512,
        text_mask_padding=False,
        conv_layers=4,
        pe_attn_head=1,
    ),
    "F5TTS_v1_Base": ModelArch(
        backbone="DiT",
        dim=1024,
        depth=22,
        heads=16,
        ff_mult=2,
        text_dim=512,
        text_mask_padding=True,
        qk_norm=None,
        conv_layers=4,
        pe_attn_head=None,
    ),
    "F5TTS_Small": ModelArch(
        backbone="DiT",
        dim=768,
        depth=18,
        heads=12,
        ff_mult=2,
        text_dim=512,
        text_mask_padding=False,
        conv_layers=4,
        pe_attn_head=1,
    ),
    "E2TTS_Base": ModelArch(
        backbone="UNetT",
        dim=1024,
        depth=24,
        heads=16,
        ff_mult=4,
        text_mask_padding=False,
        pe_attn_head=1,
    ),
}

# Upstream's F5TTS_Base_bigvgan.yaml: the F5TTS_Base network trained on BigVGAN's mel front end
# (``mel_spec_type: bigvgan``); its checkpoint needs the BigVGAN vocoder.
ARCHS["F5TTS_Base_bigvgan"] = ARCHS["F5TTS_Base"]
MEL_SPEC_TYPE_OF_PRESET: dict[str, str] = {"F5TTS_Base_bigvgan": "bigvgan"}
"""Presets whose checkpoints were trained on a mel other than the default "vocos" one."""

_FIELDS = {f for f in ModelArch.__dataclass_fields__ if f != "backbone"}
# Keys of upstream yaml/config ``arch`` sections that do not change inference numerics.
_IGNORED_CONFIG_KEYS = {"checkpoint_activations", "attn_backend", "dropout"}


def mel_spec_type_from_config(d: Mapping[str, Any]) -> str | None:
    """``mel_spec_type`` of an upstream-style config (``mel_spec.mel_spec_type``, also under ``model``)."""
    for section in (d, d.get("model")):
        if not isinstance(section, Mapping):
            continue
        if isinstance(section.get("mel_spec_type"), str):
            return str(section["mel_spec_type"])
        mel_spec = section.get("mel_spec")
        if isinstance(mel_spec, Mapping) and isinstance(mel_spec.get("mel_spec_type"), str):
            return str(mel_spec["mel_spec_type"])
    return None


def preset_name(arch: ModelArch) -> str | None:
    """The name of the preset equal to ``arch``, if any."""
    for name, preset in ARCHS.items():
        if preset == arch:
            return name
    return None


def arch_from_config_dict(d: Mapping[str, Any]) -> ModelArch:
    """Build a :class:`ModelArch` from an upstream-style config mapping.

    Accepts the golden ``config.json`` layout ``{"backbone": ..., "arch": {...}}``, the manifest layout
    ``{"backbone": ..., "config": {...}}`` and upstream's yaml ``model`` section (``backbone`` + ``arch``).
    Missing fields take upstream's constructor defaults.
    """
    if "model" in d and isinstance(d["model"], Mapping):
        d = d["model"]
    backbone = d.get("backbone")
    section = d.get("arch", d.get("config"))
    if backbone not in ("DiT", "UNetT") or not isinstance(section, Mapping):
        raise ValueError("config has no 'backbone' (DiT|UNetT) with an 'arch' section")
    kwargs: dict[str, Any] = {}
    for key, value in section.items():
        if key in _IGNORED_CONFIG_KEYS:
            continue
        if key not in _FIELDS:
            raise ValueError(f"unsupported architecture option {key!r}")
        kwargs[key] = value
    return ModelArch(backbone=backbone, **kwargs)


_V1_HINT = re.compile(r"(?<![a-z0-9])v1(?![0-9])", re.IGNORECASE)


def _strip_prefix(key: str) -> str:
    for prefix in ("ema_model.", "module.", "model."):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def _count_indexed(keys: set[str], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    indices = {int(m.group(1)) for k in keys if (m := pattern.match(k))}
    return max(indices) + 1 if indices else 0


def infer_arch(state_dict: Mapping[str, Any], *, hint: str | None = None) -> tuple[ModelArch, int]:
    """Recognise the architecture of a CFM state dict from its key names and tensor shapes.

    Returns ``(arch, text_num_embeds)`` where ``text_num_embeds`` is the embedding table's rows minus one
    (row 0 is the filler token). Keys may carry the checkpoint prefix ``ema_model.``. ``hint`` (a file name
    or repo id) only decides what shapes cannot: v0 versus v1 flags, see the module docstring.
    Raises ``ValueError`` when the keys are not an F5-TTS / E2-TTS model.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    for key, value in state_dict.items():
        k = _strip_prefix(key)
        if k.startswith("transformer."):
            shapes[k[len("transformer.") :]] = tuple(getattr(value, "shape", ()))
    keys = set(shapes)

    def shape(key: str) -> tuple[int, ...]:
        if key not in shapes:
            raise ValueError(f"not an F5-TTS/E2-TTS state dict: missing transformer.{key}")
        return shapes[key]

    dim = shape("time_embed.time_mlp.0.weight")[0]
    text_rows, text_width = shape("text_embed.text_embed.weight")
    text_num_embeds = text_rows - 1
    mel_dim = shape("proj_out.weight")[0]
    dim_head = 2 * shape("rotary_embed.inv_freq")[0]
    conv_layers = _count_indexed(keys, "text_embed.text_blocks.")
    text_dim = None if text_width == mel_dim and conv_layers == 0 else text_width

    if any(k.startswith("transformer_blocks.") for k in keys):
        depth = _count_indexed(keys, "transformer_blocks.")
        inner = shape("transformer_blocks.0.attn.to_q.weight")[0]
        ff_inner = shape("transformer_blocks.0.ff.ff.0.0.weight")[0]
        qk_norm = "rms_norm" if "transformer_blocks.0.attn.q_norm.weight" in keys else None
        base = dict(
            backbone="DiT",
            dim=dim,
            depth=depth,
            heads=inner // dim_head,
            ff_mult=ff_inner // dim,
            dim_head=dim_head,
            text_dim=text_dim,
            conv_layers=conv_layers,
            qk_norm=qk_norm,
            long_skip_connection="long_skip_connection.weight" in keys,
        )
    elif any(k.startswith("layers.") for k in keys):
        depth = _count_indexed(keys, "layers.")
        inner = shape("layers.0.2.to_q.weight")[0]
        ff_inner = shape("layers.0.4.ff.0.0.weight")[0]
        qk_norm = "rms_norm" if "layers.0.2.q_norm.weight" in keys else None
        if f"layers.{depth // 2}.0.weight" in keys:
            skip: SkipConnectType = "concat"
        else:
            raise ValueError(
                "UNetT checkpoint without skip projections: 'add' and 'none' skip connections cannot be told "
                "apart from the weights; pass the architecture explicitly"
            )
        base = dict(
            backbone="UNetT",
            dim=dim,
            depth=depth,
            heads=inner // dim_head,
            ff_mult=ff_inner // dim,
            dim_head=dim_head,
            text_dim=text_dim,
            conv_layers=conv_layers,
            qk_norm=qk_norm,
            skip_connect_type=skip,
        )
    else:
        raise ValueError("not an F5-TTS/E2-TTS state dict: neither transformer_blocks.* nor layers.* found")

    wants_v1 = hint is not None and _V1_HINT.search(hint) is not None
    if base["backbone"] == "DiT" and wants_v1:
        flags: dict[str, bool | int | None] = {"text_mask_padding": True, "pe_attn_head": None}
    else:  # v0 flags: F5TTS_Base, F5TTS_Small, E2TTS_Base
        flags = {"text_mask_padding": False, "pe_attn_head": 1}
    return ModelArch(**base, **flags), text_num_embeds  # type: ignore[arg-type]
