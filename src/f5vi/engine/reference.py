"""Reference voices prepared once (load, clip, trim, loudness, mel) and cached per file version."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from f5vi.engine.audio import load_audio, prepare_reference
from f5vi.engine.mel import MelSpecType, mel_extractor, to_cfm_layout
from f5vi.engine.types import HOP_LENGTH, SAMPLE_RATE


@dataclass(frozen=True)
class ReferenceConditioning:
    mel: torch.Tensor  # [1, frames, 100] on the engine device, fp32
    num_samples: int
    output_gain: float  # multiply generated audio by this to restore the reference's loudness
    clipped: bool

    @property
    def num_frames(self) -> int:
        """Frames of the conditioning mel (``samples // hop + 1`` with the vocos mel, ``// hop`` bigvgan)."""
        return int(self.mel.shape[1])

    @property
    def audio_frames(self) -> int:
        """``samples // hop``: what upstream counts as the reference length in durations and slicing."""
        return self.num_samples // HOP_LENGTH

    @property
    def seconds(self) -> float:
        return self.num_samples / SAMPLE_RATE


class ReferenceCache:
    """LRU of prepared references keyed by path + size + mtime (an edited file is re-read)."""

    def __init__(
        self,
        *,
        device: torch.device,
        max_seconds: float,
        target_rms: float,
        capacity: int = 32,
        mel_spec_type: MelSpecType | str = "vocos",
    ):
        self._device = device
        self._max_seconds = max_seconds
        self._target_rms = target_rms
        self._capacity = capacity
        # the checkpoint's own mel front end: vocos (centred, N // hop + 1 frames) or bigvgan (N // hop)
        self._mel = mel_extractor(mel_spec_type).to(device).eval()
        self._items: OrderedDict[tuple[str, int, int], ReferenceConditioning] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def get(self, path: Path) -> ReferenceConditioning:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        prepared = self._prepare(path)
        with self._lock:
            self._items[key] = prepared
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return prepared

    def _prepare(self, path: Path) -> ReferenceConditioning:
        wave, sample_rate = load_audio(path)
        ref = prepare_reference(wave, sample_rate, max_seconds=self._max_seconds, target_rms=self._target_rms)
        samples = np.asarray(ref.wave_24k, dtype=np.float32)
        tensor = torch.from_numpy(samples).unsqueeze(0).to(self._device)
        with torch.inference_mode():
            mel = to_cfm_layout(self._mel(tensor))  # [1, frames, 100]
        return ReferenceConditioning(
            mel=mel, num_samples=samples.shape[0], output_gain=1.0 / ref.rms_scale, clipped=ref.clipped
        )
