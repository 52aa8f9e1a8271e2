"""Speaker similarity: how much an output sounds like its reference voice (``f5vi eval``).

A speaker-verification model through transformers (``AutoModelForAudioXVector``: WavLM / wav2vec2 /
UniSpeech-SAT x-vector heads; default ``microsoft/wavlm-base-plus-sv``, ``F5VI_SPEAKER_MODEL``) embeds
16 kHz audio; the similarity is the cosine of two embeddings (1: the same voice as far as the model
can tell). Upstream's ``eval/`` uses a WavLM-large ECAPA-TDNN from UniSpeech, which is no transformers
model; the numbers are comparable between runs of this tool, not with papers.

Without the model (offline, never downloaded) and with the demo fallback, a tiny random-weight WavLM
x-vector in the real layout is made instead and flagged as a demo: its similarities mean nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from f5vi.engine.asr import to_mono_float32
from f5vi.engine.audio import resample
from f5vi.engine.errors import ModelLoadError

logger = logging.getLogger(__name__)

SPEAKER_SAMPLE_RATE = 16_000
MAX_SPEAKER_SECONDS = 20.0
"""Longer clips are embedded from their first 20 s (memory of the attention grows with length)."""
DEMO_SPEAKER_MARKER = "F5VI_DEMO_SPEAKER"


def build_tiny_wavlm(out_dir: Path) -> Path:
    """A 0.1 M parameter random WavLM x-vector model and its feature extractor, saved as upstream's."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    torch.manual_seed(0)
    config = WavLMConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32, 32),
        conv_stride=(5, 4, 4),
        conv_kernel=(10, 8, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        num_buckets=32,
        max_bucket_distance=200,
        tdnn_dim=(32, 32, 64),
        tdnn_kernel=(5, 3, 1),
        tdnn_dilation=(1, 2, 1),
        xvector_output_dim=16,
    )
    model = WavLMForXVector(config).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SPEAKER_SAMPLE_RATE, do_normalize=True, return_attention_mask=True
    ).save_pretrained(out_dir)
    (out_dir / DEMO_SPEAKER_MARKER).write_text("random weights: similarities mean nothing\n")
    return out_dir


class SpeakerEncoder:
    """Lazily loaded, thread-safe speaker embedder (see the module docstring)."""

    def __init__(self, model_id: str, device: str = "cpu", *, demo_dir: Path | None = None) -> None:
        self.model_id = model_id
        self.device = device
        self.demo_dir = demo_dir
        self.is_demo = False
        self._lock = threading.Lock()
        self._extractor: Any = None
        self._model: Any = None

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from transformers import AutoFeatureExtractor, AutoModelForAudioXVector

            started = time.perf_counter()
            source: str | Path = self.model_id
            try:
                extractor = AutoFeatureExtractor.from_pretrained(source)
                model = AutoModelForAudioXVector.from_pretrained(source)
            except Exception as exc:
                if self.demo_dir is None:
                    raise ModelLoadError(
                        f"could not load speaker model {self.model_id!r}: {str(exc).strip()[:300]}. Point "
                        "F5VI_SPEAKER_MODEL at a local directory or the Hugging Face cache, or run with "
                        "--demo-fallback (a random demo model: similarities mean nothing)."
                    ) from exc
                logger.error(
                    "could not load speaker model %r; falling back to the DEMO speaker model in %s: "
                    "random weights, its similarities MEAN NOTHING",
                    self.model_id,
                    self.demo_dir,
                )
                if not (self.demo_dir / DEMO_SPEAKER_MARKER).is_file():
                    build_tiny_wavlm(self.demo_dir)
                source = self.demo_dir
                extractor = AutoFeatureExtractor.from_pretrained(source)
                model = AutoModelForAudioXVector.from_pretrained(source)
                self.is_demo = True
            self._extractor, self._model = extractor, model.to(self.device).eval()
            logger.info("loaded speaker model %s in %.2f s", source, time.perf_counter() - started)

    def embed(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        """The unit-length embedding of one clip (float mono)."""
        import torch

        self.load()
        wav16 = resample(to_mono_float32(wave), int(sample_rate), SPEAKER_SAMPLE_RATE)
        wav16 = wav16[: int(MAX_SPEAKER_SECONDS * SPEAKER_SAMPLE_RATE)]
        if len(wav16) < SPEAKER_SAMPLE_RATE // 2:
            wav16 = np.pad(wav16, (0, SPEAKER_SAMPLE_RATE // 2 - len(wav16)))
        with self._lock:
            inputs = self._extractor(wav16, sampling_rate=SPEAKER_SAMPLE_RATE, return_tensors="pt")
            with torch.inference_mode():
                out = self._model(**{k: v.to(self.device) for k, v in inputs.items()}).embeddings[0]
        vector = out.float().cpu().numpy()
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    def similarity(self, a: np.ndarray, a_rate: int, b: np.ndarray, b_rate: int) -> float:
        """Cosine similarity of the two clips' embeddings, in [-1, 1]."""
        return float(np.dot(self.embed(a, a_rate), self.embed(b, b_rate)))
