"""SSML through the real engine (demo model, random weights: the words are noise, the timing is real).

What is measured: each ``<break>`` is digital silence of the requested length in the audio (runs of
zero samples, measured to the sample), the same in a stream; ``<prosody rate>`` changes the planned and
generated length of its segment. What is not: how natural a pause sounds with real weights.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine_helpers import REFERENCE_TEXT, SpokenClip, speak
from f5vi.engine.synthesizer import Synthesizer
from f5vi.engine.types import ReferenceVoice, SynthesisRequest

SR = 24_000


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> SpokenClip:
    return speak(tmp_path_factory.mktemp("ref"), REFERENCE_TEXT)


def _request(reference: SpokenClip, text: str, **kwargs: object) -> SynthesisRequest:
    voice = ReferenceVoice(audio_path=reference.path, transcript=reference.transcript)
    values: dict[str, object] = {"nfe_step": 2, "seed": 3, "speed": 1.0}
    values.update(kwargs)
    return SynthesisRequest(text=text, reference=voice, **values)  # type: ignore[arg-type]


def silences(audio: np.ndarray, min_seconds: float = 0.05) -> list[tuple[int, int]]:
    """(start, length) in samples of every run of silence (|x| < 1e-5) at least ``min_seconds`` long."""
    quiet = np.concatenate([[False], np.abs(audio) < 1e-5, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    runs = [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    return [(a, n) for a, n in runs if n >= min_seconds * SR]


def test_each_break_is_silence_of_its_length(demo_synth: Synthesizer, reference: SpokenClip) -> None:
    text = (
        '<speak>Xin chào các bạn.<break time="300ms"/>Hôm nay trời đẹp.'
        '<break time="1.2s"/>Chúng ta đi dạo.<break strength="weak"/>Hẹn gặp lại.</speak>'
    )
    result = demo_synth.synthesize(_request(reference, text))
    runs = silences(result.audio)
    measured_ms = [n / SR * 1000 for _, n in runs]
    assert len(runs) == 3, measured_ms
    for got, want in zip(measured_ms, (300, 1200, 250), strict=True):
        assert abs(got - want) <= 10, (got, want)
    plan = demo_synth.plan(_request(reference, text))
    assert [s.pause_before_seconds for s in plan.segments] == [0.0, 0.3, 1.2, 0.25]
    # the plan's length (used for estimates) includes the silences
    assert plan.estimated_seconds(0.15) == pytest.approx(result.duration_seconds, abs=0.05)
    # a stream carries the same silences
    streamed = np.concatenate(list(demo_synth.stream(_request(reference, text))))
    assert [n for _, n in silences(streamed)] == [n for _, n in runs]


def test_leading_and_trailing_breaks(demo_synth: Synthesizer, reference: SpokenClip) -> None:
    text = '<speak><break time="200ms"/>Xin chào.<break time="500ms"/></speak>'
    result = demo_synth.synthesize(_request(reference, text))
    runs = silences(result.audio)
    assert runs[0][0] == 0 and abs(runs[0][1] - 0.2 * SR) <= 0.01 * SR
    assert runs[-1][0] + runs[-1][1] == len(result.audio) and abs(runs[-1][1] - 0.5 * SR) <= 0.01 * SR


def test_prosody_rate_changes_that_segments_duration(demo_synth: Synthesizer, reference: SpokenClip) -> None:
    sentence = "Hôm nay trời đẹp và chúng tôi đi dạo trong công viên."
    plain = demo_synth.plan(_request(reference, f"<speak>{sentence}</speak>"))
    slow = demo_synth.plan(_request(reference, f'<speak><prosody rate="50%">{sentence}</prosody></speak>'))
    fast = demo_synth.plan(_request(reference, f'<speak><prosody rate="x-fast">{sentence}</prosody></speak>'))
    assert slow.segments[0].speed == 0.5 and fast.segments[0].speed == pytest.approx(1.4)
    assert slow.estimated_seconds(0.15) == pytest.approx(2 * plain.estimated_seconds(0.15), rel=0.05)
    assert fast.estimated_seconds(0.15) == pytest.approx(plain.estimated_seconds(0.15) / 1.4, rel=0.05)
    # only the marked segment changes, and the audio follows the plan
    mixed = f'<speak>{sentence} <break time="100ms"/><prosody rate="slow">{sentence}</prosody></speak>'
    result = demo_synth.synthesize(_request(reference, mixed))
    (start, length), *_ = silences(result.audio)
    first, second = start, len(result.audio) - start - length
    assert [s.speed for s in demo_synth.plan(_request(reference, mixed)).segments] == [1.0, 0.8]
    assert second / first == pytest.approx(1 / 0.8, rel=0.08)


@pytest.mark.parametrize(
    "text",
    [
        "GPT xin chào [[1]. GPT tạm biệt.",
        '<speak>GPT <sub alias="a">b</sub> xin &amp; chào.<break/>'
        '<prosody rate="fast">GPT nhé.</prosody></speak>',
    ],
)
def test_every_planned_piece_maps_back_to_the_submitted_text(
    demo_synth: Synthesizer, reference: SpokenClip, text: str
) -> None:
    """What timestamps need: each part's pieces span the submitted text, in order, without overlap."""
    from f5vi.engine.text.lexicon import Lexicon, request_entries

    lexicon = Lexicon(request_entries([("GPT", "gi pi ti", False)]))
    plan = demo_synth.plan(_request(reference, text, lexicon=lexicon))
    pieces = [p for segment in plan.segments for p in segment.pieces]
    for piece in pieces:
        if piece.verbatim:
            assert text[piece.char_start : piece.char_end] == piece.text
    starts = [p.char_start for p in pieces]
    assert starts == sorted(starts)
    assert all(a.char_end <= b.char_start for a, b in itertools.pairwise(pieces))
    assert [text[h.char_start : h.char_end] for h in plan.lexicon_hits] == ["GPT", "GPT"]
