"""Band-limited resampling whose cost does not depend on how the two sample rates factor.

The filter is torchaudio's default one (``torchaudio.functional.resample``: Hann-windowed sinc,
6 zero crossings, roll-off 0.99), which upstream F5-TTS uses. torchaudio evaluates it as one dense
``conv1d`` whose kernel has ``p x (q + 2w)`` taps for the reduced ratio ``p/q = sr_to/sr_from``.
That is cheap when the rates share a large factor (44.1 kHz -> 24 kHz: 80 x 171) and ruinous when
they do not: 12,007 Hz -> 24 kHz is 24,000 x 12,021 taps (1.2 GB in float32, built through several
temporaries of that size), and 23,999 Hz needs twice that, which is how a 96 KB upload took gigabytes.
Yet only ``2w + 1`` taps of each kernel row are non-zero.

:func:`resample` therefore keeps torchaudio's own dense path while its kernel is small (every pair of
the usual rates: 8/11.025/16/22.05/32/44.1/48/88.2/96/192 kHz to or from 24 kHz, so their results are
exactly torchaudio's), and otherwise evaluates the same kernel only where it is non-zero: a table of
``p x (2w + 1)`` weights and ``2w + 1`` multiply-adds per output sample, whatever the rates. The two
paths agree to float32 rounding (tested). Rates are not approximated: the output has exactly
``ceil(n * sr_to / sr_from)`` samples, like torchaudio's.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchaudio

LOWPASS_FILTER_WIDTH = 6
"""Zero crossings of the sinc on each side (torchaudio's default)."""
ROLLOFF = 0.99
"""Cut-off as a fraction of the lower Nyquist frequency (torchaudio's default)."""
DENSE_KERNEL_LIMIT = 1 << 16
"""Largest dense kernel (elements) left to torchaudio; 11.025 kHz <-> 24 kHz, the largest usual one,
has 320 x 161 = 51,520."""
_CHUNK_ELEMENTS = 1 << 22
"""Gathered input samples per step of the sparse path (16 MB of float32): bounds its memory."""


def resample(wave: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Resample ``[N]`` or ``[C, N]`` float audio from ``sr_from`` to ``sr_to`` Hz -> float32.

    Time and memory grow with the number of output samples and the filter length
    (``~12 * max(1, sr_from / sr_to)`` taps), never with ``sr_from * sr_to / gcd**2``.
    """
    wave = np.asarray(wave, dtype=np.float32)
    if sr_from <= 0 or sr_to <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_from} -> {sr_to}")
    if sr_from == sr_to:
        return wave.copy()
    plan = ResamplePlan(int(sr_from), int(sr_to))
    if plan.dense_kernel_elements <= DENSE_KERNEL_LIMIT:
        tensor = torch.from_numpy(np.ascontiguousarray(wave))
        return torchaudio.functional.resample(tensor, sr_from, sr_to).numpy()
    if wave.ndim == 1:
        return plan.apply(wave)
    flat = wave.reshape(-1, wave.shape[-1])
    out = np.stack([plan.apply(row) for row in flat])
    return out.reshape(*wave.shape[:-1], out.shape[-1])


class ResamplePlan:
    """torchaudio's sinc kernel for ``sr_from -> sr_to``, kept as its non-zero taps only.

    With ``p/q`` the reduced ratio and ``w`` the half-width in input samples, output sample
    ``k = b*p + j`` (block ``b``, phase ``j``) is ``sum_m x[b*q + s_j + m - w] * taps[j, m]`` for
    ``m in [0, 2w]``, where ``s_j = floor(j*q/p)``: the same sum as torchaudio's row ``j``, which is
    zero outside ``[s_j, s_j + 2w]``.
    """

    def __init__(self, sr_from: int, sr_to: int) -> None:
        gcd = math.gcd(sr_from, sr_to)
        self.q = sr_from // gcd  # input samples per block
        self.p = sr_to // gcd  # output samples per block
        base = min(self.p, self.q) * ROLLOFF
        self.width = math.ceil(LOWPASS_FILTER_WIDTH * self.q / base)
        self._base = base

    @property
    def dense_kernel_elements(self) -> int:
        """Size of the kernel torchaudio would build: ``p x (q + 2w)``."""
        return self.p * (self.q + 2 * self.width)

    @property
    def taps(self) -> int:
        return 2 * self.width + 1

    def _table(self) -> tuple[np.ndarray, np.ndarray]:
        """``(s_j, taps[j, m])``, the weights computed as torchaudio computes them (in float64)."""
        p, q, w = self.p, self.q, self.width
        phases = np.arange(p, dtype=np.int64)
        starts = (phases * q) // p
        offsets = starts[:, None] + np.arange(self.taps, dtype=np.int64)[None, :]  # torchaudio's i
        t = ((offsets - w) / q - phases[:, None] / p) * self._base
        t = np.clip(t, -LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
        window = np.cos(t * math.pi / LOWPASS_FILTER_WIDTH / 2) ** 2
        t *= math.pi
        with np.errstate(invalid="ignore", divide="ignore"):
            sinc = np.where(t == 0, 1.0, np.sin(t) / t)
        kernel = sinc * window * (self._base / q)
        return starts, kernel.astype(np.float32)

    def apply(self, wave: np.ndarray) -> np.ndarray:
        """Resample one channel ``[N]`` (float32)."""
        n = wave.shape[0]
        out_len = -(-self.p * n // self.q)  # ceil(p * n / q), torchaudio's target length
        if out_len == 0:
            return np.zeros(0, dtype=np.float32)
        starts, kernel = self._table()
        # torchaudio pads w zeros in front and w + q behind; the last window read starts at most at
        # (out_len - 1) // p * q + q - 1 and spans 2w + 1 samples, which that padding covers.
        padded = np.zeros(n + 2 * self.width + self.q, dtype=np.float32)
        padded[self.width : self.width + n] = wave
        windows = np.lib.stride_tricks.sliding_window_view(padded, self.taps)  # a view, no copy
        out = np.empty(out_len, dtype=np.float32)
        step = max(1, _CHUNK_ELEMENTS // self.taps)
        for first in range(0, out_len, step):
            k = np.arange(first, min(first + step, out_len), dtype=np.int64)
            block, phase = np.divmod(k, self.p)
            rows = windows[block * self.q + starts[phase]]
            out[first : first + k.size] = np.einsum("ij,ij->i", rows, kernel[phase])
        return out
