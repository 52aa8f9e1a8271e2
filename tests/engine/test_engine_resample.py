"""The resampler: torchaudio's filter, exactly torchaudio's output at the usual rates, bounded cost at
co-prime ones (the 12,007 Hz / 23,999 Hz uploads that took gigabytes), and what those sound like."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torchaudio

from f5vi.engine.audio import prepare_reference
from f5vi.engine.errors import InvalidReferenceError
from f5vi.engine.resample import DENSE_KERNEL_LIMIT, ResamplePlan, resample

COMMON_RATES = (8_000, 11_025, 16_000, 22_050, 32_000, 44_100, 48_000, 88_200, 96_000, 192_000)
ODD_RATES = (12_007, 23_999, 44_056, 8_001)


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32)


@pytest.mark.parametrize(("sr_from", "sr_to"), [(sr, 24_000) for sr in COMMON_RATES] + [(24_000, 16_000)])
def test_usual_rates_give_exactly_torchaudios_output(sr_from: int, sr_to: int) -> None:
    """The golden references were made with torchaudio: at these rates nothing may change."""
    assert ResamplePlan(sr_from, sr_to).dense_kernel_elements <= DENSE_KERNEL_LIMIT
    wave = _noise(sr_from // 2)
    expected = torchaudio.functional.resample(torch.from_numpy(wave), sr_from, sr_to).numpy()
    np.testing.assert_array_equal(resample(wave, sr_from, sr_to), expected)


@pytest.mark.parametrize(
    ("sr_from", "sr_to"),
    [(44_100, 24_000), (22_050, 24_000), (11_025, 24_000), (1_001, 2_003), (2_003, 1_001)],
)
def test_sparse_evaluation_is_torchaudios_kernel(sr_from: int, sr_to: int) -> None:
    """Against torchaudio in float64 (its float32 kernel itself drifts by ~1e-4 for large ratios)."""
    wave = _noise(sr_from // 3, seed=1)
    expected = torchaudio.functional.resample(torch.from_numpy(wave.astype(np.float64)), sr_from, sr_to)
    got = ResamplePlan(sr_from, sr_to).apply(wave)
    assert got.shape == tuple(expected.shape)
    assert float(np.max(np.abs(got - expected.numpy()))) < 2e-6


@pytest.mark.parametrize("sr_from", ODD_RATES)
def test_odd_rates_keep_a_sines_frequency(sr_from: int) -> None:
    """Compared with the same sine generated at 24 kHz: a rate error of even 1e-4 would drift the phase
    by 1.3 rad over these 2 s and the SNR would collapse to ~0 dB."""
    t = np.arange(2 * sr_from) / sr_from
    wave = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    out = resample(wave, sr_from, 24_000).astype(np.float64)
    assert out.size == 48_000
    ideal = 0.5 * np.sin(2 * np.pi * 1000.0 * np.arange(out.size) / 24_000)
    inner = slice(2_400, -2_400)  # both ends see torchaudio's zero padding
    error = out[inner] - ideal[inner]
    snr_db = 10 * np.log10(np.mean(ideal[inner] ** 2) / np.mean(error**2))
    assert snr_db > 58.0, snr_db


def test_channels_are_resampled_independently() -> None:
    stereo = np.stack([_noise(24_014, seed=2), _noise(24_014, seed=3)])
    out = resample(stereo, 12_007, 24_000)
    assert out.shape == (2, 48_000)
    np.testing.assert_array_equal(out[1], resample(stereo[1], 12_007, 24_000))


def test_odd_rate_needs_no_gigabytes() -> None:
    """2 s at 23,999 Hz and at 12,007 Hz, in a process allowed only 1 GB of address space above what
    torch needs at import: torchaudio's dense kernel (24,000 x 24,013 float32, ~2.3 GB, built through
    several temporaries) cannot be allocated there; the sparse one is ~1 MB."""
    script = textwrap.dedent(
        """
        import resource
        import numpy as np
        import f5vi.engine.audio as audio

        def vm_bytes():
            for line in open("/proc/self/status"):
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
        limit = vm_bytes() + (1 << 30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        for sr in (23_999, 12_007):
            t = np.arange(2 * sr) / sr
            out = audio.resample((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr, 24_000)
            assert out.shape == (48_000,), out.shape
        print("ok")
        """
    )
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


@pytest.mark.parametrize("sample_rate", [7_999, 384_001, 4_000_000_000])
def test_reference_rates_outside_the_accepted_range_are_refused(sample_rate: int) -> None:
    with pytest.raises(InvalidReferenceError, match="sample rate"):
        prepare_reference(_noise(48_000), sample_rate)
