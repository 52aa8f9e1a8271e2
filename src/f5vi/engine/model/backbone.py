"""What the DiT and UNetT backbones share: time/text/input embeddings, rotary frequencies, the
text-embedding cache across ODE steps, and the packed conditional + unconditional (CFG) batch."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from f5vi.engine.model.modules import (
    Attention,
    InputEmbedding,
    RotaryEmbedding,
    TextEmbedCache,
    TextEmbedding,
    TimestepEmbedding,
)


class FlowBackbone(nn.Module):
    """Base of both backbones. Submodules are created in upstream's order, so state-dict keys match.

    ``mask_embeddings``: whether a batch's padding mask reaches the text and convolutional position
    embeddings (upstream's DiT does this; its UNetT does not).
    """

    def __init__(
        self,
        *,
        dim: int,
        depth: int,
        dim_head: int,
        mel_dim: int,
        text_num_embeds: int,
        text_dim: int | None,
        text_mask_padding: bool,
        conv_layers: int,
        mask_embeddings: bool,
    ) -> None:
        super().__init__()
        if text_dim is None:
            text_dim = mel_dim
        self.dim = dim
        self.depth = depth
        self.mel_dim = mel_dim
        self.mask_embeddings = mask_embeddings
        self.time_embed = TimestepEmbedding(dim)
        self.text_embed = TextEmbedding(
            text_num_embeds, text_dim, mask_padding=text_mask_padding, conv_layers=conv_layers
        )
        self.input_embed = InputEmbedding(mel_dim, text_dim, dim)
        self.rotary_embed = RotaryEmbedding(dim_head)
        self._text_cache = TextEmbedCache()

    def set_attention_masking(self, enabled: bool) -> None:
        """Mask padded frames out as attention keys in batches of different durations.

        Upstream leaves this off, so in a batch a short item also attends to the padding behind it and
        comes out different from the same item alone (the golden batch cases record that behaviour).
        The service turns it on: every chunk of a batch then matches its one-at-a-time result.
        """
        for module in self.modules():
            if isinstance(module, Attention):
                module.attn_mask_enabled = enabled

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
        if not self.mask_embeddings:
            audio_mask = None
        text_embed = self._text(text, x.shape[1], drop_text, cache, audio_mask)
        return self.input_embed(x, cond, text_embed, drop_audio_cond=drop_audio_cond, audio_mask=audio_mask)

    def embed(
        self,
        x: Tensor,
        cond: Tensor,
        text: Tensor,
        time: Tensor,
        mask: Tensor | None,
        *,
        drop_audio_cond: bool,
        drop_text: bool,
        cfg_infer: bool,
        cache: bool,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Input tokens ``h``, time embedding ``t`` and ``mask``, each doubled when ``cfg_infer``
        (conditional batch first, then the unconditional one with audio and text dropped)."""
        if time.ndim == 0:
            time = time.repeat(x.shape[0])
        t = self.time_embed(time)
        if not cfg_infer:
            h = self.get_input_embed(
                x,
                cond,
                text,
                drop_audio_cond=drop_audio_cond,
                drop_text=drop_text,
                cache=cache,
                audio_mask=mask,
            )
            return h, t, mask
        x_cond = self.get_input_embed(
            x, cond, text, drop_audio_cond=False, drop_text=False, cache=cache, audio_mask=mask
        )
        x_uncond = self.get_input_embed(
            x, cond, text, drop_audio_cond=True, drop_text=True, cache=cache, audio_mask=mask
        )
        h = torch.cat((x_cond, x_uncond), dim=0)
        del x_cond, x_uncond
        return h, torch.cat((t, t), dim=0), torch.cat((mask, mask), dim=0) if mask is not None else None
