"""Word times by CTC forced alignment with a wav2vec2 model (``F5VI_ALIGNER_MODEL``).

A Vietnamese wav2vec2 fine-tune with a character CTC head (transformers ``Wav2Vec2ForCTC`` +
``Wav2Vec2Processor``) gives per-frame letter probabilities (20 ms frames at 16 kHz); the chunk's
normalised words, spelled in the model's vocabulary with its word delimiter between them, are forced
through them (:mod:`f5vi.engine.timing.ctc`) and each word spans its first to its last letter.

Why not PhoWhisper's word timestamps: Whisper's come from cross-attention heads chosen per checkpoint
(``alignment_heads`` in the generation config), which PhoWhisper's fine-tunes do not ship, and they
are a by-product of free decoding: the words may differ from the text we asked for. Forced alignment
aligns exactly the words we synthesised and needs one encoder pass.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from f5vi.engine.resample import resample
from f5vi.engine.timing.ctc import align

logger = logging.getLogger(__name__)


@dataclass
class CtcAligner:
    """A loaded CTC model and its vocabulary; one forward pass per chunk, serialised by a lock."""

    model: Any
    processor: Any
    device: torch.device

    def __post_init__(self) -> None:
        tokenizer = self.processor.tokenizer
        self.vocab: dict[str, int] = dict(tokenizer.get_vocab())
        self.blank = int(tokenizer.pad_token_id)
        self.delimiter = self.vocab.get(getattr(tokenizer, "word_delimiter_token", "|") or "|")
        self.sample_rate = int(self.processor.feature_extractor.sampling_rate)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, source: str, device: torch.device | None = None) -> CtcAligner:
        from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor  # heavy: only when configured

        target = device or torch.device("cpu")
        processor = Wav2Vec2Processor.from_pretrained(source)
        model: Any = Wav2Vec2ForCTC.from_pretrained(source)
        model.to(target).eval()
        return cls(model=model, processor=processor, device=target)

    def spell(self, word: str) -> list[int]:
        """The word's letters as vocabulary ids (letters the model lacks are left out)."""
        return [self.vocab[c] for c in word.lower() if c in self.vocab and self.vocab[c] != self.blank]

    def emissions(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Log-probabilities ``[frames, vocab]`` for ``audio``."""
        wave = resample(np.asarray(audio, dtype=np.float32), sample_rate, self.sample_rate)
        inputs = self.processor(wave, sampling_rate=self.sample_rate, return_tensors="pt")
        with self._lock, torch.inference_mode():
            logits = self.model(inputs.input_values.to(self.device)).logits[0]
        return torch.log_softmax(logits.float(), dim=-1).cpu().numpy()

    def align_words(self, words: list[str], audio: np.ndarray, sample_rate: int) -> list[tuple[int, int]]:
        """Sample spans of ``words`` in ``audio`` (relative to its start).

        A word with no letter the model knows gets the gap between its neighbours. Raises ValueError
        when the words cannot fit the frames (the caller estimates that chunk instead).
        """
        log_probs = self.emissions(audio, sample_rate)
        targets: list[int] = []
        owner: list[int] = []
        for i, word in enumerate(words):
            ids = self.spell(word)
            if targets and ids and self.delimiter is not None:
                targets.append(self.delimiter)
                owner.append(-1)
            targets.extend(ids)
            owner.extend([i] * len(ids))
        per_frame = len(audio) / max(log_probs.shape[0], 1)
        found: dict[int, list[int]] = {}
        for span in align(log_probs, targets, self.blank):
            number = owner[span.index]
            if number >= 0:
                found.setdefault(number, [span.start, span.end])[1] = span.end
        spans: list[tuple[int, int]] = []
        for i in range(len(words)):
            if i in found:
                start, end = found[i]
                spans.append((round(start * per_frame), round(end * per_frame)))
            else:
                previous_end = spans[-1][1] if spans else 0
                following = min((found[k][0] for k in found if k > i), default=None)
                end = round(following * per_frame) if following is not None else len(audio)
                spans.append((previous_end, max(previous_end, end)))
        return spans
