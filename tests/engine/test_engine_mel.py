"""Mel extraction: parity with upstream F5-TTS' vocos-type MelSpec (golden data) and layout helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from f5vi.engine.mel import LogMelSpectrogram, log_mel, num_frames, to_cfm_layout, to_vocoder_layout

GOLDEN_ATOL = 1e-4  # golden/README.md, `mel` section


@pytest.fixture(scope="module")
def golden_mel(golden_dir):
    return load_file(str(golden_dir / "mel.safetensors"))


def test_golden_mel_parity(golden_mel):
    wave, expected = golden_mel["wave"], golden_mel["mel"]
    assert expected.shape == (1, 100, 94)
    out = LogMelSpectrogram()(wave)
    assert out.shape == expected.shape
    assert out.dtype == torch.float32
    max_diff = (out - expected).abs().max().item()
    assert max_diff <= GOLDEN_ATOL, max_diff


def test_log_mel_function_accepts_numpy_and_1d(golden_mel):
    wave, expected = golden_mel["wave"], golden_mel["mel"]
    out = log_mel(wave[0].numpy())
    assert out.shape == (1, 100, 94)
    assert (out - expected).abs().max().item() <= GOLDEN_ATOL


def test_batch_and_channel_dim_shapes(golden_mel):
    wave = golden_mel["wave"]
    module = LogMelSpectrogram()
    batched = module(torch.cat([wave, 0.5 * wave]))
    with_channel = module(wave.unsqueeze(1))
    assert batched.shape == (2, 100, 94)
    assert torch.equal(with_channel, module(wave))
    # Halving the amplitude lowers every (unclamped) log-magnitude by log(2).
    unclamped = batched[0] > np.log(1e-5) + 1.0
    diff = (batched[0] - batched[1])[unclamped]
    assert diff.numel() > 1000
    assert torch.allclose(diff, torch.full_like(diff, float(np.log(2.0))), atol=1e-4)
    with pytest.raises(ValueError):
        module(torch.zeros(2, 2, 100))


def test_float64_input_is_computed_in_float32(golden_mel):
    wave = golden_mel["wave"]
    out = LogMelSpectrogram()(wave.double())
    assert out.dtype == torch.float32
    assert (out - golden_mel["mel"]).abs().max().item() <= GOLDEN_ATOL


def test_silence_is_clamped_at_log_1e5():
    out = LogMelSpectrogram()(torch.zeros(1, 2560))
    assert torch.allclose(out, torch.full_like(out, float(np.log(1e-5))))


def test_frame_count_and_layout_helpers():
    for n in (1, 255, 256, 24_000, 24_001):
        assert LogMelSpectrogram()(torch.zeros(n + 1024)).shape[-1] == num_frames(n + 1024)
    assert num_frames(24_000) == 94
    mel = torch.randn(2, 100, 7)
    cfm = to_cfm_layout(mel)
    assert cfm.shape == (2, 7, 100)
    assert torch.equal(to_vocoder_layout(cfm), mel)


def test_state_dict_keys_match_vocos_feature_extractor():
    keys = set(LogMelSpectrogram().state_dict())
    assert keys == {"mel_spec.spectrogram.window", "mel_spec.mel_scale.fb"}
