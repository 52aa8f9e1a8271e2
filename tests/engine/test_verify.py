"""Verification with real models in the real layout: the demo F5-TTS model and a tiny random Whisper.

The tiny Whisper's transcripts are garbage letters, so the thresholds decide: ``max_cer=0`` fails every
chunk (nothing garbage equals the text), a huge one passes every chunk, and one between two chunks'
measured CERs passes one and not the other. What is tested is the mechanics: re-sampling, the kept
attempt, seeds, the untouched first attempt, cancel between attempts, the stream's order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine_helpers import REFERENCE_TEXT, SpokenClip, demo_settings, speak
from f5vi.engine.asr import Transcriber
from f5vi.engine.errors import SynthesisCancelled
from f5vi.engine.synthesizer import Synthesizer
from f5vi.engine.text.canonical import character_error_rate
from f5vi.engine.types import CancelToken, ReferenceVoice, SynthesisRequest, VerifyOptions
from f5vi.engine.verify import attempt_seed
from tiny_whisper import tiny_whisper

SENTENCE = "Xin chào các bạn."
TWO_CHUNKS = (
    "Hà Nội là thủ đô của Việt Nam. Thành phố có nhiều hồ nước đẹp và những con phố cổ kính. "
    "Mùa thu ở đây trời trong xanh, gió nhẹ và lá vàng rơi khắp nơi. "
    "Người dân thường dậy sớm để tập thể dục quanh hồ, rồi ăn một bát phở nóng trước khi đi làm."
)
"""Several chunks (3 with the test reference)."""
NFE = 4


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> SpokenClip:
    return speak(tmp_path_factory.mktemp("ref"), REFERENCE_TEXT)


@pytest.fixture(scope="module")
def synthesizer(tmp_path_factory: pytest.TempPathFactory) -> Synthesizer:
    synth = Synthesizer.from_settings(demo_settings(tmp_path_factory.mktemp("demo")))
    synth.transcriber = Transcriber(str(tiny_whisper(tmp_path_factory)), device="cpu")
    return synth


def _request(
    reference: SpokenClip, text: str, verify: VerifyOptions | None, **kw: object
) -> SynthesisRequest:
    voice = ReferenceVoice(audio_path=reference.path, transcript=reference.transcript)
    values: dict[str, object] = {"nfe_step": NFE, "seed": 7, "verify": verify}
    values.update(kw)
    return SynthesisRequest(text=text, reference=voice, **values)  # type: ignore[arg-type]


def test_attempt_seeds_are_the_request_seed_then_derived_and_reproducible() -> None:
    assert attempt_seed(7, 0, 1) == 7 and attempt_seed(7, 3, 1) == 7
    derived = {attempt_seed(7, chunk, attempt) for chunk in range(3) for attempt in range(2, 5)}
    assert len(derived) == 9 and all(0 <= s < 2**32 for s in derived)
    assert attempt_seed(7, 1, 2) == attempt_seed(7, 1, 2) != attempt_seed(8, 1, 2)


def test_chunk_over_threshold_is_resampled_and_the_best_attempt_kept(
    synthesizer: Synthesizer, reference: SpokenClip
) -> None:
    options = VerifyOptions(max_cer=0.0, max_attempts=3)
    before = synthesizer.sampler.steps_run
    result = synthesizer.synthesize(_request(reference, SENTENCE, options))
    assert len(result.chunks) == 1
    assert synthesizer.sampler.steps_run - before == 3 * NFE  # three samplings of the one chunk
    [report] = result.verification or []
    assert report.chunk == 0 and report.attempts == 3 and not report.passed

    # each attempt on its own: the same chunk, unverified, with that attempt's seed
    asr = synthesizer.asr()
    waves, cers = [], []
    for attempt in (1, 2, 3):
        seed = attempt_seed(7, 0, attempt)
        alone = synthesizer.synthesize(_request(reference, SENTENCE, None, seed=seed))
        waves.append(alone.audio)
        cers.append(character_error_rate(result.chunks[0], asr.transcribe_many([alone.audio], 24_000)[0]))
    best = int(np.argmin(cers))  # the earliest of equal CERs
    assert report.cer == pytest.approx(cers[best])
    assert report.seed == attempt_seed(7, 0, best + 1)
    np.testing.assert_array_equal(result.audio, waves[best])

    again = synthesizer.synthesize(_request(reference, SENTENCE, options))
    np.testing.assert_array_equal(again.audio, result.audio)
    assert again.verification == result.verification


def test_chunk_under_threshold_is_never_run_again(synthesizer: Synthesizer, reference: SpokenClip) -> None:
    before = synthesizer.sampler.steps_run
    plain = synthesizer.synthesize(_request(reference, TWO_CHUNKS, None))
    plain_steps = synthesizer.sampler.steps_run - before
    before = synthesizer.sampler.steps_run
    checked = synthesizer.synthesize(
        _request(reference, TWO_CHUNKS, VerifyOptions(max_cer=1e9, max_attempts=3))
    )
    assert len(plain.chunks) >= 2
    assert synthesizer.sampler.steps_run - before == plain_steps == len(plain.chunks) * NFE
    np.testing.assert_array_equal(checked.audio, plain.audio)
    assert [(v.attempts, v.passed, v.seed) for v in checked.verification or []] == [(1, True, 7)] * len(
        plain.chunks
    )
    assert plain.verification is None


def test_only_the_chunk_over_threshold_is_resampled(synthesizer: Synthesizer, reference: SpokenClip) -> None:
    measured = synthesizer.synthesize(
        _request(reference, TWO_CHUNKS, VerifyOptions(max_cer=0.0, max_attempts=1))
    )
    cers = [v.cer for v in measured.verification or []]
    assert len(cers) >= 2 and min(cers) < max(cers)
    threshold = (min(cers) + max(cers)) / 2
    good = [i for i, c in enumerate(cers) if c <= threshold]
    bad = [i for i, c in enumerate(cers) if c > threshold]
    events: list[tuple[str, int, int]] = []
    result = synthesizer.synthesize(
        _request(reference, TWO_CHUNKS, VerifyOptions(max_cer=threshold, max_attempts=2)),
        on_progress=lambda f, stage, i, n: events.append((stage, i, n)),
    )
    reports = result.verification or []
    assert all(reports[i].attempts == 1 and reports[i].passed and reports[i].seed == 7 for i in good)
    assert all(reports[i].attempts == 2 and reports[i].cer <= cers[i] for i in bad)
    # progress counts attempts: samplings done / planned, every chunk once and the failed ones again
    resampling = [(i, n) for stage, i, n in events if stage == "resampling"]
    assert resampling and {n for _, n in resampling} == {len(cers) + len(bad)}
    assert resampling[-1][0] == len(cers) + len(bad)  # the last step of the last re-sampling


def test_cancel_between_attempts(synthesizer: Synthesizer, reference: SpokenClip) -> None:
    cancel = CancelToken()

    def on_progress(fraction: float, stage: str, index: int, count: int) -> None:
        if stage == "verifying":  # the first attempts are sampled; their transcription is next
            cancel.cancel()

    chunks = len(synthesizer.plan(_request(reference, TWO_CHUNKS, None)).chunks)
    before = synthesizer.sampler.steps_run
    with pytest.raises(SynthesisCancelled):
        synthesizer.synthesize(
            _request(reference, TWO_CHUNKS, VerifyOptions(max_cer=0.0, max_attempts=3)), on_progress, cancel
        )
    assert synthesizer.sampler.steps_run - before == chunks * NFE  # no step of a second attempt ran


def test_stream_sends_each_chunk_once_settled_as_the_one_shot_result(
    synthesizer: Synthesizer, reference: SpokenClip
) -> None:
    options = VerifyOptions(max_cer=0.0, max_attempts=2)
    whole = synthesizer.synthesize(_request(reference, TWO_CHUNKS, options))
    settled: list[object] = []
    pieces = list(synthesizer.stream(_request(reference, TWO_CHUNKS, options), on_verified=settled.append))
    np.testing.assert_allclose(np.concatenate(pieces), whole.audio, atol=1e-5)
    assert settled == whole.verification


def test_demo_recogniser_is_made_and_flagged(tmp_path: Path) -> None:
    asr = Transcriber(str(tmp_path / "no-such-model"), device="cpu", demo_dir=tmp_path / "demo-asr")
    [text] = asr.transcribe_many([np.zeros(24_000, dtype=np.float32)], 24_000)
    assert asr.is_demo and isinstance(text, str)
    assert (tmp_path / "demo-asr" / "F5VI_DEMO_ASR").is_file()
