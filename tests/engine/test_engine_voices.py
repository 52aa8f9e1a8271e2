"""Multi-voice text through the real engine (demo model, real speech references).

``[b]`` in the text hands the rest to voice b: the result must be what the two parts sound like
alone, each with its own voice, the same seed and the same settings, cross-faded; chunked with each
voice's own budget and restored to each voice's own loudness. Voice b is recorded quietly (below the
target loudness) so that a chunk vocoded with the other voice's gain could not pass.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from engine_helpers import REFERENCE_TEXT, SpokenClip, demo_settings, speak
from f5vi.engine.audio import cross_fade_concat
from f5vi.engine.errors import InvalidReferenceError, InvalidTextError
from f5vi.engine.synthesizer import Synthesizer
from f5vi.engine.types import ReferenceVoice, SegmentSummary, SynthesisRequest

PART_A = "Hà Nội là thủ đô của Việt Nam. Thành phố có nhiều hồ nước đẹp và những con phố cổ kính."
PART_B = "Mùa thu ở đây trời trong xanh, gió nhẹ và lá vàng rơi khắp nơi. Người dân dậy sớm tập thể dục."
B_TRANSCRIPT = "tạm biệt các bạn, hẹn gặp lại vào sáng mai nhé."
ATOL = 5e-4
"""As in test_engine_sharing: batched vs alone differ by float rounding of other GEMM shapes."""


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReferenceVoice, ReferenceVoice]:
    root = tmp_path_factory.mktemp("voices")
    a: SpokenClip = speak(root, REFERENCE_TEXT, name="a")
    b: SpokenClip = speak(root, B_TRANSCRIPT, voice="vi-vn-x-south", name="b")
    wave, sr = sf.read(b.path, dtype="float32")
    sf.write(b.path, wave * 0.2, sr, subtype="PCM_16")  # quieter than the target: its gain is > 1
    return (
        ReferenceVoice(audio_path=a.path, transcript=a.transcript, voice_id="a"),
        ReferenceVoice(audio_path=b.path, transcript=b.transcript, voice_id="b"),
    )


@pytest.fixture(scope="module")
def synthesizer(tmp_path_factory: pytest.TempPathFactory) -> Synthesizer:
    return Synthesizer.from_settings(demo_settings(tmp_path_factory.mktemp("demo"), normalizer="none"))


def _request(text: str, reference: ReferenceVoice, **kwargs: object) -> SynthesisRequest:
    values: dict[str, object] = {"nfe_step": 4, "seed": 5}
    values.update(kwargs)
    return SynthesisRequest(text=text, reference=reference, **values)  # type: ignore[arg-type]


def test_two_voices_equal_their_parts_alone_cross_faded(
    synthesizer: Synthesizer, voices: tuple[ReferenceVoice, ReferenceVoice]
) -> None:
    a, b = voices
    alone_a = synthesizer.synthesize(_request(PART_A, a))
    alone_b = synthesizer.synthesize(_request(PART_B, b))
    request = _request(f"{PART_A} [b] {PART_B}", a, voices=(("b", b),))
    plan = synthesizer.plan(request)
    default = synthesizer.max_batch_frames
    try:
        together = synthesizer.synthesize(request)
        synthesizer.max_batch_frames = 16_384  # GPU-like: chunks of both voices share ODE batches
        batched = synthesizer.synthesize(request)
    finally:
        synthesizer.max_batch_frames = default

    # each part chunked with its own voice's budget, reported in order
    assert together.chunks == alone_a.chunks + alone_b.chunks
    assert together.segments == [
        SegmentSummary("a", len(alone_a.chunks)),
        SegmentSummary("b", len(alone_b.chunks)),
    ]
    assert together.chunk_voices == ["a"] * len(alone_a.chunks) + ["b"] * len(alone_b.chunks)
    first, second = plan.segments
    assert first.max_chunk_bytes != second.max_chunk_bytes  # different references: different budgets
    assert first.reference.output_gain != pytest.approx(second.reference.output_gain, rel=0.1)
    assert together.normalized_text == f"{alone_a.normalized_text} {alone_b.normalized_text}"
    assert together.reference_text == alone_a.reference_text

    expected = cross_fade_concat([alone_a.audio, alone_b.audio], 24_000, request.cross_fade_seconds)
    assert len(together.audio) == len(expected) == round(plan.estimated_seconds(0.15) * 24_000)
    np.testing.assert_allclose(together.audio, expected, atol=ATOL)
    np.testing.assert_allclose(batched.audio, expected, atol=ATOL)


def test_the_stream_of_a_two_voice_text_is_its_whole_result(
    synthesizer: Synthesizer, voices: tuple[ReferenceVoice, ReferenceVoice]
) -> None:
    a, b = voices
    request = _request(f"[b] {PART_B} [a] {PART_A}", a, voices=(("b", b),), seed=9)
    whole = synthesizer.synthesize(request)
    assert [s.voice_id for s in whole.segments] == ["b", "a"]
    assert whole.reference_text != synthesizer.synthesize(_request(PART_A, a)).reference_text  # b's
    streamed = np.concatenate(list(synthesizer.stream(request)))
    assert len(streamed) == len(whole.audio)
    np.testing.assert_allclose(streamed, whole.audio, atol=ATOL)


def test_a_part_with_nothing_to_say_names_its_segment(
    synthesizer: Synthesizer, voices: tuple[ReferenceVoice, ReferenceVoice]
) -> None:
    a, b = voices
    with pytest.raises(InvalidTextError, match=r"the part of voice \[b\] has nothing that can be read aloud"):
        synthesizer.plan(_request("Xin chào. [b] 😀 🎉", a, voices=(("b", b),)))
    with pytest.raises(InvalidTextError, match="nothing to say besides voice tags"):
        synthesizer.plan(_request("[b] [a]", a, voices=(("b", b), ("a", a))))


def test_a_tagged_voice_without_transcript_is_a_clear_error(
    synthesizer: Synthesizer, voices: tuple[ReferenceVoice, ReferenceVoice]
) -> None:
    a, b = voices
    untranscribed = replace(b, transcript=None)
    with pytest.raises(InvalidReferenceError, match="voice 'b' has no transcript"):
        synthesizer.plan(_request("Một. [b] Hai.", a, voices=(("b", untranscribed),)))
    # the request's own voice is not needed when the text starts with a tag
    plan = synthesizer.plan(_request("[b] Hai.", replace(a, transcript=None), voices=(("b", b),)))
    assert [s.voice_id for s in plan.segments] == ["b"]
