"""F5-TTS diffusion transformer backbone (``DiT``), inference only, state-dict compatible with upstream."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from f5vi.engine.model.backbone import FlowBackbone
from f5vi.engine.model.modules import (
    AdaLayerNorm_Final,
    DiTBlock,
)


class DiT(FlowBackbone):
    """Predicts the flow (velocity) for a noisy mel given the reference mel, text ids and flow time.

    In a batch of different durations (``mask``), each item's text embedding and convolutional position
    embedding see only its own valid frames (zeros beyond), as upstream 2ae2c9b does; attention keys are
    not masked (``attn_mask_enabled=False``, upstream's default) and padded output frames are meaningless.
    """

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
        long_skip_connection: bool = False,
        attn_mask_enabled: bool = False,
    ) -> None:
        super().__init__(
            dim=dim,
            depth=depth,
            dim_head=dim_head,
            mel_dim=mel_dim,
            text_num_embeds=text_num_embeds,
            text_dim=text_dim,
            text_mask_padding=text_mask_padding,
            conv_layers=conv_layers,
            mask_embeddings=True,
        )
        self.transformer_blocks = nn.ModuleList(
            [
                DiTBlock(
                    dim=dim,
                    heads=heads,
                    dim_head=dim_head,
                    ff_mult=ff_mult,
                    qk_norm=qk_norm,
                    pe_attn_head=pe_attn_head,
                    attn_mask_enabled=attn_mask_enabled,
                )
                for _ in range(depth)
            ]
        )
        self.long_skip_connection = nn.Linear(dim * 2, dim, bias=False) if long_skip_connection else None
        self.norm_out = AdaLayerNorm_Final(dim)
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
        """``x``, ``cond``: ``[b, n, mel_dim]``; ``text``: ``[b, nt]`` ids (-1 padded); ``time``: ``[b]``
        or a scalar; ``mask``: ``[b, n]`` valid frames of a batch with different durations.

        ``cfg_infer=True`` runs the conditional and the unconditional (audio and text dropped) pass as one
        batch and returns ``[2b, n, mel_dim]``: conditional first.
        """
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
        rope = self.rotary_embed.forward_from_seq_len(seq_len)
        residual = h

        for block in self.transformer_blocks:
            h = block(h, t, mask=mask, rope=rope)

        if self.long_skip_connection is not None:
            h = self.long_skip_connection(torch.cat((h, residual), dim=-1))

        h = self.norm_out(h, t)
        return self.proj_out(h)
