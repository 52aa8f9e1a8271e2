"""Building blocks shared by the DiT and UNetT backbones (inference only).

Attribute names and the order of sub-modules follow upstream F5-TTS exactly, because they define the
state-dict keys of the published checkpoints (e.g. ``ff.ff.0.0.weight``, ``attn.to_out.0.weight``). Where
upstream has a parameter-free ``Dropout`` at an index that later parameters depend on, an ``nn.Identity``
keeps the index. The arithmetic follows upstream operation by operation so fp32 results agree to float
rounding.
"""

from __future__ import annotations

import math
import threading

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# --------------------------------------------------------------------------------------------------------
# position embeddings


class SinusPositionEmbedding(nn.Module):
    """Sinusoidal embedding of the flow time step (scaled by 1000, as upstream)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor, scale: float = 1000.0) -> Tensor:
        half_dim = self.dim // 2
        factor = math.log(10000) / (half_dim - 1)
        freqs = torch.exp(torch.arange(half_dim, device=x.device).float() * -factor)
        emb = scale * x.unsqueeze(1) * freqs.unsqueeze(0)
        return torch.cat((emb.sin(), emb.cos()), dim=-1)


class TimestepEmbedding(nn.Module):
    def __init__(self, dim: int, freq_embed_dim: int = 256) -> None:
        super().__init__()
        self.time_embed = SinusPositionEmbedding(freq_embed_dim)
        self.time_mlp = nn.Sequential(nn.Linear(freq_embed_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, timestep: Tensor) -> Tensor:
        # the sinusoids are computed in the time's dtype (fp32 from our sampler), then cast to the weights'
        hidden = self.time_embed(timestep).to(self.time_mlp[0].weight.dtype)
        return self.time_mlp(hidden)


class ConvPositionEmbedding(nn.Module):
    """Two grouped convolutions with Mish, used as a relative position signal on the input sequence."""

    def __init__(self, dim: int, kernel_size: int = 31, groups: int = 16) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd")
        self.conv1d = nn.Sequential(
            nn.Conv1d(dim, dim, kernel_size, groups=groups, padding=kernel_size // 2),
            nn.Mish(),
            nn.Conv1d(dim, dim, kernel_size, groups=groups, padding=kernel_size // 2),
            nn.Mish(),
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, d]``; with ``mask`` ``[b, n]`` padded frames are zeroed before and after *each*
        convolution, so every item sees exactly zero padding (as if it had been run alone)."""
        h = x.permute(0, 2, 1)
        if mask is None:
            return self.conv1d(h).permute(0, 2, 1)
        pad = ~mask.unsqueeze(1)
        h = h.masked_fill(pad, 0.0)
        conv1, act1, conv2, act2 = self.conv1d
        h = act1(conv1(h)).masked_fill(pad, 0.0)
        h = act2(conv2(h)).masked_fill(pad, 0.0)
        return h.permute(0, 2, 1)


def precompute_freqs_cis(dim: int, end: int, theta: float = 10000.0) -> Tensor:
    """``[end, dim]`` table of cos | sin of position x frequency (the text encoder's absolute positions)."""
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
    t = torch.arange(end, device=freqs.device)
    freqs = torch.outer(t, freqs).float()
    return torch.cat([torch.cos(freqs), torch.sin(freqs)], dim=-1)


class RotaryEmbedding(nn.Module):
    """Rotary position frequencies (x-transformers layout: each frequency repeated for an adjacent pair).

    ``inv_freq`` is a persistent buffer, so it is part of the checkpoint and is loaded from it.
    """

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.inv_freq: torch.Tensor
        self.register_buffer("inv_freq", inv_freq)

    def forward_from_seq_len(self, seq_len: int) -> Tensor:
        """Frequencies ``[1, seq_len, dim]`` for positions ``0 .. seq_len-1``, always in float32.

        Upstream casts positions to the model dtype: in fp16 positions past 2048 (in bf16 past 256)
        round to their neighbours, blurring where long outputs are. We keep float32 here (identical
        results in fp32, exact positions in half precision).
        """
        inv_freq = self.inv_freq.float()
        t = torch.arange(seq_len, device=inv_freq.device, dtype=torch.float32)
        freqs = t[None, :, None] * inv_freq[None, None, :]
        return torch.stack((freqs, freqs), dim=-1).flatten(-2)


def _rotate_half(x: Tensor) -> Tensor:
    pairs = x.unflatten(-1, (-1, 2))
    x1, x2 = pairs.unbind(dim=-1)
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


def apply_rotary_pos_emb(t: Tensor, freqs: Tensor) -> Tensor:
    """Rotate ``t`` ``[b, h, n, d]`` by ``freqs`` ``[1, n, rot_dim]``; dims past ``rot_dim`` pass through."""
    rot_dim, seq_len, orig_dtype = freqs.shape[-1], t.shape[-2], t.dtype
    freqs = freqs[:, -seq_len:, :]
    if t.ndim == 4 and freqs.ndim == 3:
        freqs = freqs.unsqueeze(1)
    t_rot, t_pass = t[..., :rot_dim], t[..., rot_dim:]
    t_rot = t_rot * freqs.cos() + _rotate_half(t_rot) * freqs.sin()
    return torch.cat((t_rot, t_pass), dim=-1).type(orig_dtype)


# --------------------------------------------------------------------------------------------------------
# text encoder blocks


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt-V2); the norm runs over the *sequence* axis, as upstream."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: Tensor) -> Tensor:
        gx = torch.norm(x, p=2, dim=1, keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    def __init__(self, dim: int, intermediate_dim: int, dilation: int = 1) -> None:
        super().__init__()
        padding = (dilation * (7 - 1)) // 2
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=padding, groups=dim, dilation=dilation)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.grn = GRN(intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        residual = x
        x = self.dwconv(x.transpose(1, 2)).transpose(1, 2)
        x = self.norm(x)
        x = self.pwconv1(x)
        x = self.act(x)
        x = self.grn(x)
        x = self.pwconv2(x)
        return residual + x


# --------------------------------------------------------------------------------------------------------
# norms


class RMSNorm(nn.Module):
    """Upstream F5-TTS RMSNorm (``weight``), used for ``qk_norm="rms_norm"``."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.to(self.weight.dtype)
        return F.rms_norm(x, normalized_shape=(x.shape[-1],), weight=self.weight, eps=self.eps)


class ScaledL2Norm(nn.Module):
    """x-transformers ``RMSNorm`` as UNetT uses it: ``normalize(x) * sqrt(dim) * g`` (parameter ``g``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = dim**0.5
        self.g = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1) * self.scale * self.g


class AdaLayerNorm(nn.Module):
    """adaLN-Zero: modulated pre-norm for attention plus the shift/scale/gate of the MLP branch."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.silu = nn.SiLU()
        self.linear = nn.Linear(dim, dim * 6)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)

    def forward(self, x: Tensor, emb: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        emb = self.linear(self.silu(emb))
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = torch.chunk(emb, 6, dim=1)
        x = self.norm(x) * (1 + scale_msa[:, None]) + shift_msa[:, None]
        return x, gate_msa, shift_mlp, scale_mlp, gate_mlp


class AdaLayerNorm_Final(nn.Module):  # noqa: N801 - upstream's class name
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.silu = nn.SiLU()
        self.linear = nn.Linear(dim, dim * 2)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        emb = self.linear(self.silu(emb))
        scale, shift = torch.chunk(emb, 2, dim=1)
        return self.norm(x) * (1 + scale)[:, None, :] + shift[:, None, :]


# --------------------------------------------------------------------------------------------------------
# feed-forward and attention


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: float = 4, approximate: str = "none") -> None:
        super().__init__()
        inner_dim = int(dim * mult)
        project_in = nn.Sequential(nn.Linear(dim, inner_dim), nn.GELU(approximate=approximate))
        # index 1 is upstream's Dropout: kept as Identity so the last Linear stays ``ff.2``
        self.ff = nn.Sequential(project_in, nn.Identity(), nn.Linear(inner_dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.ff(x)


class Attention(nn.Module):
    """Multi-head self-attention with optional rotary embedding on the first ``pe_attn_head`` heads.

    ``attn_mask_enabled``: whether padded frames are masked out as keys. Upstream (2ae2c9b) leaves this off
    by default; padded outputs are zeroed either way.
    """

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        dim_head: int = 64,
        qk_norm: str | None = None,
        pe_attn_head: int | None = None,
        attn_mask_enabled: bool = False,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.heads = heads
        self.inner_dim = dim_head * heads
        self.pe_attn_head = pe_attn_head
        self.attn_mask_enabled = attn_mask_enabled

        self.to_q = nn.Linear(dim, self.inner_dim)
        self.to_k = nn.Linear(dim, self.inner_dim)
        self.to_v = nn.Linear(dim, self.inner_dim)
        self.q_norm: RMSNorm | None
        self.k_norm: RMSNorm | None
        if qk_norm is None:
            self.q_norm = self.k_norm = None
        elif qk_norm == "rms_norm":
            self.q_norm = RMSNorm(dim_head, eps=1e-6)
            self.k_norm = RMSNorm(dim_head, eps=1e-6)
        else:
            raise ValueError(f"unsupported qk_norm {qk_norm!r}")
        # upstream: [Linear, Dropout]; only index 0 carries parameters
        self.to_out = nn.ModuleList([nn.Linear(self.inner_dim, dim)])

    def _rotate(self, t: Tensor, freqs: Tensor) -> Tensor:
        pn = self.pe_attn_head
        if pn is None:
            return apply_rotary_pos_emb(t, freqs)
        return torch.cat((apply_rotary_pos_emb(t[:, :pn], freqs), t[:, pn:]), dim=1)

    def forward(self, x: Tensor, mask: Tensor | None = None, rope: Tensor | None = None) -> Tensor:
        batch = x.shape[0]
        query, key, value = self.to_q(x), self.to_k(x), self.to_v(x)
        head_dim = key.shape[-1] // self.heads
        query = query.view(batch, -1, self.heads, head_dim).transpose(1, 2)
        key = key.view(batch, -1, self.heads, head_dim).transpose(1, 2)
        value = value.view(batch, -1, self.heads, head_dim).transpose(1, 2)

        if self.q_norm is not None:
            query = self.q_norm(query)
        if self.k_norm is not None:
            key = self.k_norm(key)

        if rope is not None:
            query = self._rotate(query, rope)
            key = self._rotate(key, rope)

        attn_mask = None
        if self.attn_mask_enabled and mask is not None:
            attn_mask = mask[:, None, None, :].expand(batch, self.heads, query.shape[-2], key.shape[-2])
        out = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attn_mask, dropout_p=0.0, is_causal=False
        )
        del query, key, value, attn_mask
        out = out.transpose(1, 2).reshape(batch, -1, self.heads * head_dim).to(x.dtype)

        out = self.to_out[0](out)
        if mask is not None:
            out = out.masked_fill(~mask.unsqueeze(-1), 0.0)
        return out


class DiTBlock(nn.Module):
    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        ff_mult: float = 4,
        qk_norm: str | None = None,
        pe_attn_head: int | None = None,
        attn_mask_enabled: bool = False,
    ) -> None:
        super().__init__()
        self.attn_norm = AdaLayerNorm(dim)
        self.attn = Attention(
            dim=dim,
            heads=heads,
            dim_head=dim_head,
            qk_norm=qk_norm,
            pe_attn_head=pe_attn_head,
            attn_mask_enabled=attn_mask_enabled,
        )
        self.ff_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ff = FeedForward(dim=dim, mult=ff_mult, approximate="tanh")

    def forward(self, x: Tensor, t: Tensor, mask: Tensor | None = None, rope: Tensor | None = None) -> Tensor:
        norm, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.attn_norm(x, emb=t)
        attn_output = self.attn(norm, mask=mask, rope=rope)
        x = x + gate_msa.unsqueeze(1) * attn_output
        del attn_output
        norm = self.ff_norm(x) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
        ff_output = self.ff(norm)
        return x + gate_mlp.unsqueeze(1) * ff_output


# --------------------------------------------------------------------------------------------------------
# text and input embeddings (shared by DiT and UNetT)


class TextEmbedding(nn.Module):
    """Character embedding (+ optional sinusoidal positions and ConvNeXt-V2 blocks), padded to the mel length.

    Ids arrive with batch padding ``-1``; ``+1`` shifts them so row 0 is the filler token.
    """

    precompute_max_pos = 4096  # ~44 s of 24 kHz audio

    def __init__(
        self,
        text_num_embeds: int,
        text_dim: int,
        mask_padding: bool = True,
        conv_layers: int = 0,
        conv_mult: int = 2,
    ) -> None:
        super().__init__()
        self.text_embed = nn.Embedding(text_num_embeds + 1, text_dim)
        self.mask_padding = mask_padding
        self.text_dim = text_dim
        self.extra_modeling = conv_layers > 0
        if self.extra_modeling:
            self.register_buffer(
                "freqs_cis", precompute_freqs_cis(text_dim, self.precompute_max_pos), persistent=False
            )
            self.text_blocks = nn.Sequential(
                *[ConvNeXtV2Block(text_dim, text_dim * conv_mult) for _ in range(conv_layers)]
            )

    def reset_buffers(self) -> None:
        """Recompute the non-persistent position table (after building on the meta device)."""
        if self.extra_modeling:
            # float32 like a fresh module; a later ``.to(dtype)`` casts it with the weights
            table = precompute_freqs_cis(self.text_dim, self.precompute_max_pos)
            self.register_buffer("freqs_cis", table.to(self.text_embed.weight.device), persistent=False)

    def forward(
        self, text: Tensor, seq_len: int, drop_text: bool = False, audio_mask: Tensor | None = None
    ) -> Tensor:
        """Embed ``text`` ``[b, nt]`` to ``[b, seq_len, text_dim]``.

        With ``audio_mask`` ``[b, seq_len]`` (a batch of different durations) each item only gets text and
        position embeddings within its own valid length; the tail is zero, as per-item padding would give.
        """
        text = text + 1
        text = text[:, :seq_len]
        text = F.pad(text, (0, seq_len - text.shape[1]), value=0)
        valid = None
        if audio_mask is not None:
            valid = torch.arange(seq_len, device=text.device)[None, :] < audio_mask.sum(dim=1)[:, None]
            text = text.masked_fill(~valid, 0)
        text_mask = text == 0 if self.mask_padding else None

        if drop_text:
            text = torch.zeros_like(text)

        emb = self.text_embed(text)
        if valid is not None:
            emb = emb.masked_fill(~valid.unsqueeze(-1), 0.0)

        if self.extra_modeling:
            pos_idx = torch.arange(seq_len, device=emb.device).clamp(max=self.precompute_max_pos - 1)
            freqs: Tensor = self.freqs_cis  # type: ignore[assignment]
            pos = freqs[pos_idx].unsqueeze(0)
            if valid is not None:
                pos = pos * valid.unsqueeze(-1).to(pos.dtype)
            emb = emb + pos
            if text_mask is not None:
                pad = text_mask.unsqueeze(-1)
                emb = emb.masked_fill(pad, 0.0)
                for block in self.text_blocks:
                    emb = block(emb).masked_fill(pad, 0.0)
            else:
                emb = self.text_blocks(emb)
        return emb


class InputEmbedding(nn.Module):
    """Concatenate noisy mel, reference mel and text embedding, project, add the conv position signal."""

    def __init__(self, mel_dim: int, text_dim: int, out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(mel_dim * 2 + text_dim, out_dim)
        self.conv_pos_embed = ConvPositionEmbedding(dim=out_dim)

    def forward(
        self,
        x: Tensor,
        cond: Tensor,
        text_embed: Tensor,
        drop_audio_cond: bool = False,
        audio_mask: Tensor | None = None,
    ) -> Tensor:
        """``audio_mask`` zeroes padded frames around the convolutions (DiT passes it; UNetT does not)."""
        if drop_audio_cond:
            cond = torch.zeros_like(cond)
        x = self.proj(torch.cat((x, cond, text_embed), dim=-1))
        return self.conv_pos_embed(x, mask=audio_mask) + x


class TextEmbedCache:
    """Per-thread cache of the conditional / unconditional text embedding across ODE steps.

    The text embedding depends only on the token ids and the sequence length, which are fixed during one
    sampling run; upstream recomputes it only once per run (``cache=True``). The owner must call
    :meth:`clear` when the run ends (also on error), otherwise the next run would reuse a stale embedding.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self, drop_text: bool) -> Tensor | None:
        return getattr(self._local, "uncond" if drop_text else "cond", None)

    def put(self, drop_text: bool, value: Tensor) -> None:
        setattr(self._local, "uncond" if drop_text else "cond", value)

    def clear(self) -> None:
        self._local.cond = None
        self._local.uncond = None
