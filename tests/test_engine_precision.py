"""Half-precision behaviour that differs on purpose from upstream: rotary positions stay exact."""

from __future__ import annotations

import torch

from f5vi.engine.model.modules import RotaryEmbedding


def test_rotary_positions_stay_float32_in_half_precision() -> None:
    exact = RotaryEmbedding(64)
    reduced = RotaryEmbedding(64).to(torch.bfloat16)
    frames = 3000  # ~32 s of audio: positions past 256 are not representable in bf16
    freqs_exact = exact.forward_from_seq_len(frames)
    freqs_reduced = reduced.forward_from_seq_len(frames)
    assert freqs_reduced.dtype == torch.float32
    # only the buffer's own rounding to bf16 remains, not a rounding of the positions
    inv_freq = reduced.inv_freq.float()
    expected = torch.arange(frames, dtype=torch.float32)[:, None] * inv_freq[None, :]
    torch.testing.assert_close(freqs_reduced[0, :, ::2], expected)
    # the last two positions are distinct (in bf16 arithmetic they would collapse)
    assert not torch.equal(freqs_reduced[0, -1], freqs_reduced[0, -2])
    assert freqs_exact.shape == freqs_reduced.shape == (1, frames, 64)
