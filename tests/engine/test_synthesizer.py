"""End to end through the real engine: demo model + real reference speech -> audio."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine_helpers import REFERENCE_TEXT, SpokenClip, demo_settings, speak
from f5vi.engine.errors import (
    InvalidParameterError,
    InvalidReferenceError,
    InvalidTextError,
    SynthesisCancelled,
)
from f5vi.engine.synthesizer import Synthesizer
from f5vi.engine.types import CancelToken, ReferenceVoice, SynthesisRequest, SynthesisResult
from step_gate import StepGate

LONG_TEXT = (
    "Hà Nội là thủ đô của Việt Nam. Thành phố có nhiều hồ nước đẹp và những con phố cổ kính. "
    "Mùa thu ở đây trời trong xanh, gió nhẹ và lá vàng rơi khắp nơi. "
    "Người dân thường dậy sớm để tập thể dục quanh hồ, rồi ăn một bát phở nóng trước khi đi làm."
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> SpokenClip:
    return speak(tmp_path_factory.mktemp("ref"), REFERENCE_TEXT)


@pytest.fixture(scope="module")
def synthesizer(tmp_path_factory: pytest.TempPathFactory) -> Synthesizer:
    settings = demo_settings(tmp_path_factory.mktemp("demo"), nfe_step=8)
    return Synthesizer.from_settings(settings)


def _request(reference: SpokenClip, text: str, **kwargs: object) -> SynthesisRequest:
    voice = ReferenceVoice(audio_path=reference.path, transcript=reference.transcript)
    values: dict[str, object] = {"nfe_step": 8, "seed": 7}
    values.update(kwargs)
    return SynthesisRequest(text=text, reference=voice, **values)  # type: ignore[arg-type]


def _expected_seconds(result: SynthesisResult, text: str, speed: float) -> float:
    """Upstream's estimate: seconds per byte of the reference actually used, times bytes to say, / speed."""
    ref_bytes = len(result.reference_text.encode("utf-8"))
    return result.reference_seconds / ref_bytes * len(text.encode("utf-8")) / speed


def test_sentence_has_expected_duration_and_format(synthesizer: Synthesizer, reference: SpokenClip) -> None:
    events: list[tuple[float, str, int, int]] = []
    result = synthesizer.synthesize(
        _request(reference, "Xin chào các bạn, tôi là trợ lý ảo tiếng Việt.", speed=1.0),
        on_progress=lambda f, s, i, n: events.append((f, s, i, n)),
    )
    assert result.sample_rate == 24_000
    assert result.audio.ndim == 1 and result.audio.dtype == np.float32
    assert np.isfinite(result.audio).all()
    assert np.abs(result.audio).max() > 0
    assert 1.0 < result.reference_seconds <= sf.info(reference.path).duration
    expected = _expected_seconds(result, " ".join(result.chunks), 1.0)
    assert result.duration_seconds == pytest.approx(expected, rel=0.10)
    fractions = [e[0] for e in events]
    assert fractions == sorted(fractions), "progress went backwards"
    assert fractions[-1] == 1.0
    assert result.seed == 7


def test_long_text_is_chunked_batched_and_cross_faded(
    synthesizer: Synthesizer, reference: SpokenClip
) -> None:
    speed = 0.9
    result = synthesizer.synthesize(_request(reference, LONG_TEXT, speed=speed))
    assert len(result.chunks) >= 2
    per_chunk = [_expected_seconds(result, chunk, speed) for chunk in result.chunks]
    overlap = 0.15 * (len(result.chunks) - 1)
    assert result.duration_seconds == pytest.approx(sum(per_chunk) - overlap, rel=0.10)
    assert np.isfinite(result.audio).all()


def test_same_seed_same_audio_and_seed_is_reported(synthesizer: Synthesizer, reference: SpokenClip) -> None:
    first = synthesizer.synthesize(_request(reference, "Một hai ba.", seed=123))
    second = synthesizer.synthesize(_request(reference, "Một hai ba.", seed=123))
    np.testing.assert_array_equal(first.audio, second.audio)
    drawn = synthesizer.synthesize(_request(reference, "Một hai ba.", seed=None))
    assert 0 <= drawn.seed < 2**32


def test_stream_yields_the_same_audio_as_synthesize(synthesizer: Synthesizer, reference: SpokenClip) -> None:
    request = _request(reference, LONG_TEXT, seed=5)
    pieces = list(synthesizer.stream(request))
    assert len(pieces) >= 2
    streamed = np.concatenate(pieces)
    whole = synthesizer.synthesize(request)
    assert len(streamed) == pytest.approx(len(whole.audio), rel=0.02)
    assert np.isfinite(streamed).all()


ONE_CHUNK_TEXT = "Xin chào các bạn, hôm nay trời đẹp quá và chúng ta cùng nhau đi dạo."


def test_a_one_chunk_text_streams_its_first_part_before_the_rest_is_made(
    synthesizer: Synthesizer, reference: SpokenClip, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A text that fits one chunk is planned as two for a stream (the first about a third), so the
    first audio leaves while the second part's ODE is still held at its first step."""
    request = _request(reference, ONE_CHUNK_TEXT)
    assert len(synthesizer.plan(request).chunks) == 1  # jobs and /normalize: one chunk
    parts = synthesizer.planner.plan(request, short_first=True).chunks
    assert len(parts) == 2 and len(parts[0].text) < len(parts[1].text), [c.text for c in parts]
    assert " ".join(c.text for c in parts) == synthesizer.plan(request).chunks[0].text
    gate = StepGate(monkeypatch)
    gate.hold_at(request.nfe_step + 1)  # the first step after the first part's ODE (it runs alone)
    pieces = synthesizer.stream(request)
    first = next(pieces)
    assert first.size and gate.holding.is_set() and not gate.released_by_timeout
    gate.release()
    streamed = np.concatenate([first, *pieces])
    whole = synthesizer.synthesize(request)
    assert len(streamed) == pytest.approx(len(whole.audio), rel=0.1)  # one cross-fade more, same text


def test_cancel_stops_within_one_ode_step(synthesizer: Synthesizer, reference: SpokenClip) -> None:
    cancel = CancelToken()
    steps_after_cancel: list[float] = []

    def on_progress(fraction: float, stage: str, i: int, n: int) -> None:
        if cancel.cancelled:
            steps_after_cancel.append(fraction)
        elif stage == "synthesizing" and fraction > 0.1:
            cancel.cancel()

    with pytest.raises(SynthesisCancelled):
        synthesizer.synthesize(
            _request(reference, LONG_TEXT, nfe_step=32), on_progress=on_progress, cancel=cancel
        )
    assert len(steps_after_cancel) <= 1


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", InvalidTextError),
        ("   \n\t ", InvalidTextError),
        ("漢字漢字 ☃☃", InvalidTextError),
    ],
)
def test_bad_text_raises_typed_error(
    synthesizer: Synthesizer, reference: SpokenClip, text: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as info:
        synthesizer.synthesize(_request(reference, text, normalize_text=False))
    assert str(info.value)


@pytest.mark.parametrize("speed", [0.29, 2.01, 0.0, -1.0, math.nan, math.inf])
def test_speed_out_of_range(synthesizer: Synthesizer, reference: SpokenClip, speed: float) -> None:
    with pytest.raises(InvalidParameterError, match="speed"):
        synthesizer.synthesize(_request(reference, "xin chào", speed=speed))


def _write_wave(path: Path, wave: np.ndarray, sr: int = 24_000) -> Path:
    sf.write(path, wave, sr, subtype="PCM_16")
    return path


def test_bad_reference_audio(synthesizer: Synthesizer, tmp_path: Path) -> None:
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is not audio", encoding="utf-8")
    too_short = speak(tmp_path, "a", name="short")
    short_wave, sr = sf.read(too_short.path, dtype="float32")
    _write_wave(too_short.path, short_wave[: int(0.3 * sr)])
    silent = _write_wave(tmp_path / "silent.wav", np.zeros(24_000 * 3, dtype=np.float32))
    for path in (not_audio, too_short.path, silent):
        request = SynthesisRequest(
            text="xin chào", reference=ReferenceVoice(audio_path=path, transcript="xin chào")
        )
        with pytest.raises(InvalidReferenceError) as info:
            synthesizer.synthesize(request)
        assert info.value.message


def test_missing_transcript_is_a_clear_error(synthesizer: Synthesizer, reference: SpokenClip) -> None:
    request = SynthesisRequest(
        text="xin chào", reference=ReferenceVoice(audio_path=reference.path, transcript=None)
    )
    with pytest.raises(InvalidReferenceError, match="transcript"):
        synthesizer.synthesize(request)


def test_batched_chunks_sound_as_they_would_one_at_a_time(
    synthesizer: Synthesizer, reference: SpokenClip
) -> None:
    """On a GPU chunks share an ODE batch; with padded keys masked each matches its solo result."""
    request = _request(reference, LONG_TEXT, seed=3, nfe_step=4)
    default = synthesizer.max_batch_frames
    try:
        synthesizer.max_batch_frames = 1
        single = synthesizer.synthesize(request)
        synthesizer.max_batch_frames = 16_384
        batched = synthesizer.synthesize(request)
    finally:
        synthesizer.max_batch_frames = default
    assert len(single.chunks) >= 2 and single.chunks == batched.chunks
    assert len(batched.audio) == len(single.audio)
    np.testing.assert_allclose(batched.audio, single.audio, atol=2e-4)
