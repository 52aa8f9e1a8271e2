"""F5-TTS diffusion transformer backbone (``DiT``), inference only, state-dict compatible with upstream."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from f5vi.engine.model.modules import (
    AdaLayerNorm_Final,
    DiTBlock,
    InputEmbedding,
    RotaryEmbedding,
    TextEmbedCache,
    TextEmbedding,
    TimestepEmbedding,
)


class DiT(nn.Module):
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
        super().__init__()
        if text_dim is None:
            text_dim = mel_dim
        self.dim = dim
        self.depth = depth
        self.mel_dim = mel_dim

        self.time_embed = TimestepEmbedding(dim)
        self.text_embed = TextEmbedding(
            text_num_embeds, text_dim, mask_padding=text_mask_padding, conv_layers=conv_layers
        )
        self.input_embed = InputEmbedding(mel_dim, text_dim, dim)
        self.rotary_embed = RotaryEmbedding(dim_head)
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
        self._text_cache = TextEmbedCache()

    def clear_cache(self) -> None:
        """Forget the text embedding cached by ``cache=True`` calls."""
        self._text_cache.clear()

    def _text(
        self, text: Tensor, seq_len: int, drop_text: bool, cache: bool, audio_mask: Tensor | None
    ) -> Tensor:
        if not cache:
            return self.text_embed(text, seq_len, drop_text=drop_text, audio_mask=audio_mask)
        cached = self._text_cache.get(drop_text)
        if cached is None:
            cached = self.text_embed(text, seq_len, drop_text=drop_text, audio_mask=audio_mask)
            self._text_cache.put(drop_text, cached)
        return cached

    def get_input_embed(
        self,
        x: Tensor,
        cond: Tensor,
        text: Tensor,
        drop_audio_cond: bool = False,
        drop_text: bool = False,
        cache: bool = True,
        audio_mask: Tensor | None = None,
    ) -> Tensor:
        text_embed = self._text(text, x.shape[1], drop_text, cache, audio_mask)
        return self.input_embed(x, cond, text_embed, drop_audio_cond=drop_audio_cond, audio_mask=audio_mask)

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
        batch, seq_len = x.shape[0], x.shape[1]
        if time.ndim == 0:
            time = time.repeat(batch)

        t = self.time_embed(time)
        if cfg_infer:
            x_cond = self.get_input_embed(
                x, cond, text, drop_audio_cond=False, drop_text=False, cache=cache, audio_mask=mask
            )
            x_uncond = self.get_input_embed(
                x, cond, text, drop_audio_cond=True, drop_text=True, cache=cache, audio_mask=mask
            )
            h = torch.cat((x_cond, x_uncond), dim=0)
            del x_cond, x_uncond
            t = torch.cat((t, t), dim=0)
            mask = torch.cat((mask, mask), dim=0) if mask is not None else None
        else:
            h = self.get_input_embed(
                x,
                cond,
                text,
                drop_audio_cond=drop_audio_cond,
                drop_text=drop_text,
                cache=cache,
                audio_mask=mask,
            )

        rope = self.rotary_embed.forward_from_seq_len(seq_len)
        residual = h if self.long_skip_connection is not None else None

        for block in self.transformer_blocks:
            h = block(h, t, mask=mask, rope=rope)

        if self.long_skip_connection is not None:
            h = self.long_skip_connection(torch.cat((h, residual), dim=-1))

        h = self.norm_out(h, t)
        return self.proj_out(h)
