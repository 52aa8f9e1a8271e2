"""E2-TTS flat U-Net transformer backbone (``UNetT``), inference only, state-dict compatible with upstream.

Each entry of ``layers`` is ``[skip_proj | None, attn_norm, attn, ff_norm, ff]`` so the checkpoint keys read
``layers.<i>.0.weight`` (skip projection, second half only), ``layers.<i>.1.g``, ``layers.<i>.2.to_q...``.
"""

from __future__ import annotations

from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from f5vi.engine.model.backbone import FlowBackbone
from f5vi.engine.model.modules import (
    Attention,
    FeedForward,
    ScaledL2Norm,
)


class UNetT(FlowBackbone):
    def __init__(
        self,
        *,
        dim: int,
        depth: int = 8,
        heads: int = 8,
        dim_head: int = 64,
        ff_mult: float = 4,
        mel_dim: int = 100,
        text_num_embeds: int = 256,
        text_dim: int | None = None,
        text_mask_padding: bool = True,
        qk_norm: str | None = None,
        conv_layers: int = 0,
        pe_attn_head: int | None = None,
        skip_connect_type: Literal["add", "concat", "none"] = "concat",
        attn_mask_enabled: bool = False,
    ) -> None:
        if depth % 2:
            raise ValueError("UNetT depth must be even")
        super().__init__(
            dim=dim,
            depth=depth,
            dim_head=dim_head,
            mel_dim=mel_dim,
            text_num_embeds=text_num_embeds,
            text_dim=text_dim,
            text_mask_padding=text_mask_padding,
            conv_layers=conv_layers,
            mask_embeddings=False,
        )
        self.skip_connect_type = skip_connect_type

        self.layers = nn.ModuleList()
        for idx in range(depth):
            later_half = idx >= depth // 2
            skip_proj = (
                nn.Linear(dim * 2, dim, bias=False) if skip_connect_type == "concat" and later_half else None
            )
            self.layers.append(
                nn.ModuleList(
                    [
                        skip_proj,  # type: ignore[list-item]  # None keeps upstream's key indices
                        ScaledL2Norm(dim),
                        Attention(
                            dim=dim,
                            heads=heads,
                            dim_head=dim_head,
                            qk_norm=qk_norm,
                            pe_attn_head=pe_attn_head,
                            attn_mask_enabled=attn_mask_enabled,
                        ),
                        ScaledL2Norm(dim),
                        FeedForward(dim=dim, mult=ff_mult, approximate="tanh"),
                    ]
                )
            )
        self.norm_out = ScaledL2Norm(dim)
        self.proj_out = nn.Linear(dim, mel_dim)

    def forward(
        self,
        x: Tensor,
        cond: Tensor,
        text: Tensor,
        time: Tensor,
        mask: Tensor | None = None,
        drop_audio_cond: bool = False,
        drop_text: bool = False,
        cfg_infer: bool = False,
        cache: bool = False,
    ) -> Tensor:
        """Same contract as :meth:`f5vi.engine.model.dit.DiT.forward`."""
        seq_len = x.shape[1]
        h, t, mask = self.embed(
            x,
            cond,
            text,
            time,
            mask,
            drop_audio_cond=drop_audio_cond,
            drop_text=drop_text,
            cfg_infer=cfg_infer,
            cache=cache,
        )

        # the time embedding travels as an extra first token
        h = torch.cat([t.unsqueeze(1), h], dim=1)
        if mask is not None:
            mask = F.pad(mask, (1, 0), value=True)
        rope = self.rotary_embed.forward_from_seq_len(seq_len + 1)

        skips: list[Tensor] = []
        half = self.depth // 2
        for idx, layer in enumerate(self.layers):
            skip_proj, attn_norm, attn, ff_norm, ff = cast(nn.ModuleList, layer)
            if idx < half:
                skips.append(h)
            else:
                skip = skips.pop()
                if self.skip_connect_type == "concat":
                    h = skip_proj(torch.cat((h, skip), dim=-1))
                elif self.skip_connect_type == "add":
                    h = h + skip
                del skip
            h = attn(attn_norm(h), rope=rope, mask=mask) + h
            h = ff(ff_norm(h)) + h

        h = self.norm_out(h)[:, 1:, :]
        return self.proj_out(h)
