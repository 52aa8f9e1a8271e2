"""The aligner path: a tiny random wav2vec2 CTC model in the real layout, through the Synthesizer.

What is measured here is the wiring (loading with transformers, the vocabulary, frames to samples,
forced alignment, fallback); how close aligned times are to real speech needs a trained Vietnamese
model, which cannot be downloaded here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from f5vi.engine.synthesizer import Synthesizer
from f5vi.engine.timing.aligner import CtcAligner
from f5vi.engine.timing.build import Timekeeper
from f5vi.engine.timing.types import Timestamps
from f5vi.engine.types import ReferenceVoice, SynthesisRequest
from server_helpers import write_voice
from tiny_ctc import make_tiny_ctc

TEXT = "Xin chào các bạn, hôm nay trời đẹp quá. Chúng ta cùng đi dạo nhé, rồi về nhà ăn cơm."


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_ctc(tmp_path_factory.mktemp("ctc"))


@pytest.fixture
def voice(tmp_path: Path) -> ReferenceVoice:
    path = write_voice(tmp_path, "v1")
    return ReferenceVoice(audio_path=path, transcript="xin chào các bạn, hôm nay trời đẹp quá.")


@pytest.fixture
def with_aligner(demo_synth: Synthesizer, tiny_model: Path) -> Iterator[Synthesizer]:
    assert demo_synth.timekeeper.aligner_model is None  # F5VI_ALIGNER_MODEL unset: estimated
    demo_synth.timekeeper = Timekeeper(str(tiny_model))
    try:
        yield demo_synth
    finally:
        demo_synth.timekeeper = Timekeeper(None)


def test_tiny_ctc_model_aligns_words_inside_the_audio(tiny_model: Path) -> None:
    aligner = CtcAligner.load(str(tiny_model))
    assert aligner.sample_rate == 16_000 and aligner.blank == 0 and aligner.delimiter == 4
    words = ["xin", "chào", "các", "bạn"]
    assert aligner.spell("Chào") == [aligner.vocab[c] for c in "chào"]
    audio = np.random.default_rng(0).standard_normal(24_000 * 2).astype(np.float32) * 0.1
    spans = aligner.align_words(words, audio, 24_000)
    assert len(spans) == 4
    assert all(0 <= a < b <= len(audio) for a, b in spans)
    assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(spans))
    with pytest.raises(ValueError, match="do not fit"):  # 0.1 s is 5 frames: too few for the letters
        aligner.align_words(words, audio[:2400], 24_000)


def test_synthesis_reports_aligned_words_with_a_model(
    with_aligner: Synthesizer, voice: ReferenceVoice
) -> None:
    result = with_aligner.synthesize(SynthesisRequest(text=TEXT, reference=voice, nfe_step=4, seed=3))
    stamps = result.timestamps
    assert stamps is not None and stamps.method == "aligned" and not stamps.notes
    assert [w.text for w in stamps.words] == " ".join(result.chunks).split()
    starts = [w.start for w in stamps.words]
    assert starts == sorted(starts) and stamps.words[-1].end <= result.duration_seconds
    for word in stamps.words:
        chunk = stamps.chunks[word.chunk]
        assert chunk.start_sample / 24_000 <= word.start <= word.end <= chunk.end_sample / 24_000


def test_without_a_loadable_model_words_are_estimated_and_the_result_says_why(
    demo_synth: Synthesizer, voice: ReferenceVoice, tmp_path: Path
) -> None:
    request = SynthesisRequest(text=TEXT, reference=voice, nfe_step=4, seed=3)
    plain = demo_synth.synthesize(request).timestamps
    assert plain is not None and plain.method == "estimated"
    assert "F5VI_ALIGNER_MODEL" in plain.notes[0]
    demo_synth.timekeeper = Timekeeper(str(tmp_path / "missing-model"))
    try:
        broken = demo_synth.synthesize(request).timestamps
    finally:
        demo_synth.timekeeper = Timekeeper(None)
    assert broken is not None and broken.method == "estimated"
    assert "could not be loaded" in broken.notes[0] and "missing-model" in broken.notes[0]
    assert [w.start for w in broken.words] == [w.start for w in plain.words]


class _BrokenTimekeeper(Timekeeper):
    def timestamps(self, *args: object, **kwargs: object) -> Timestamps:
        raise RuntimeError("a timing bug")


def test_a_timing_failure_keeps_the_audio_and_says_so(demo_synth: Synthesizer, voice: ReferenceVoice) -> None:
    request = SynthesisRequest(text="Xin chào các bạn.", reference=voice, nfe_step=4, seed=3)
    good = demo_synth.synthesize(request)
    demo_synth.timekeeper = _BrokenTimekeeper(None)
    try:
        broken = demo_synth.synthesize(request)
    finally:
        demo_synth.timekeeper = Timekeeper(None)
    assert broken.timestamps is None and "timestamps could not be computed" in broken.warnings[-1]
    np.testing.assert_array_equal(broken.audio, good.audio)
