"""Chunk and sentence times are the planned spans, to the sample, on multi-chunk multi-voice results.

Each chunk's span in the joined audio is checked three ways: against the plan alone (planned frames x
hop, cross-fades), against the audio length, and against the audio itself: the chunk synthesised on
its own with its voice and seed is what lies in its span (outside the cross-fades).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from f5vi.engine.synthesizer import Synthesizer
from f5vi.engine.timing.spans import chunk_spans, partition
from f5vi.engine.types import ReferenceVoice, SynthesisRequest
from server_helpers import voice_wave

SR = 24_000
FADE = 0.15
PART_1 = (
    "Hà Nội là thủ đô của Việt Nam. Thành phố có nhiều hồ nước đẹp và những con phố cổ kính. "
    "Mùa thu ở đây trời trong xanh, gió nhẹ và lá vàng rơi khắp nơi."
)
PART_2 = "Người dân thường dậy sớm để tập thể dục quanh hồ. Rồi họ ăn một bát phở nóng trước khi đi làm."
TEXT = f"{PART_1} [v2] {PART_2}"


def _voice(directory: Path, name: str, seconds: float, seed: int) -> ReferenceVoice:
    path = directory / f"{name}.wav"
    sf.write(path, voice_wave(seconds, seed=seed), SR, subtype="PCM_16")
    return ReferenceVoice(
        audio_path=path, transcript="xin chào các bạn, hôm nay trời đẹp quá.", voice_id=name
    )


def test_chunk_spans_are_the_planned_spans_to_the_sample(demo_synth: Synthesizer, tmp_path: Path) -> None:
    v1, v2 = _voice(tmp_path, "v1", 6.0, 0), _voice(tmp_path, "v2", 5.0, 5)  # long: small chunks
    request = SynthesisRequest(text=TEXT, reference=v1, voices=(("v2", v2),), nfe_step=4, seed=11)
    plan = demo_synth.plan(request)
    result = demo_synth.synthesize(request)
    stamps = result.timestamps
    assert stamps is not None
    voices = [c.voice_id for c in stamps.chunks]
    assert len(stamps.chunks) >= 3 and voices[0] == "v1" and voices[-1] == "v2"

    planned = chunk_spans(plan.planned_samples(), SR, FADE)
    assert [(c.start_sample, c.end_sample) for c in stamps.chunks] == planned
    assert stamps.chunks[-1].end_sample == len(result.audio)
    as_dict = stamps.to_dict()["chunks"]
    assert [round(c["start"] * SR) for c in as_dict] == [a for a, _ in planned]

    fade = int(FADE * SR)
    for chunk, voice in zip(stamps.chunks, voices, strict=True):
        alone = demo_synth.synthesize(
            SynthesisRequest(
                text=chunk.text,
                reference=v1 if voice == "v1" else v2,
                nfe_step=4,
                seed=11,
                normalize_text=False,
            )
        ).audio
        assert len(alone) == chunk.end_sample - chunk.start_sample
        inner = slice(chunk.start_sample + fade, chunk.end_sample - fade)
        np.testing.assert_allclose(result.audio[inner], alone[fade:-fade], atol=5e-4)

    # sentences that start and end a chunk are exact: their ends are the chunk boundaries
    cuts = partition(planned)
    exact = [s for s in stamps.sentences if s.exact]
    assert exact, "the segments' first and last sentences start and end chunks"
    bounds = {round(b / SR, 6) for span in cuts for b in span}
    assert all(s.start in bounds and s.end in bounds for s in exact)
    assert stamps.sentences[0].start == 0.0 and stamps.sentences[-1].end == pytest.approx(
        result.duration_seconds
    )
    assert [s.text for s in stamps.sentences][-2:] == [
        "Người dân thường dậy sớm để tập thể dục quanh hồ.",
        "Rồi họ ăn một bát phở nóng trước khi đi làm.",
    ]
    for sentence in stamps.sentences:
        assert TEXT[sentence.char_start : sentence.char_end] == sentence.text
    for word in stamps.words:
        assert TEXT[word.char_start : word.char_end].lower().strip(".,") == word.text.strip(".,")


def test_words_of_a_normalised_tagged_text_point_at_what_was_written(
    demo_synth: Synthesizer, tmp_path: Path
) -> None:
    """Numbers, dates, abbreviations and tags through the real normaliser (vinorm) and the engine."""
    settings = demo_synth.settings.model_copy(update={"normalizer": "vinorm"})
    synth = Synthesizer(
        demo_synth.model, demo_synth.vocoder, demo_synth.vocab, settings, device=demo_synth.device,
        dtype=demo_synth.dtype, model_source="demo", vocoder_source="demo",
    )  # fmt: skip
    text = "Ngày 5/12/2024, TP.HCM có 10 triệu dân. [v2] Dr. Smith nói [[xin chào] lúc 10:30."
    v1, v2 = _voice(tmp_path, "v1", 3.0, 0), _voice(tmp_path, "v2", 3.0, 5)
    result = synth.synthesize(
        SynthesisRequest(text=text, reference=v1, voices=(("v2", v2),), nfe_step=4, seed=2)
    )
    stamps = result.timestamps
    assert stamps is not None
    by_token: dict[str, list[str]] = {}
    for word in stamps.words:
        by_token.setdefault(text[word.char_start : word.char_end], []).append(word.text)
    assert " ".join(by_token["5/12/2024,"]) == "năm tháng mười hai năm hai nghìn không trăm hai mươi tư,"
    assert " ".join(by_token["TP.HCM"]) == "thành phố hồ chí minh"
    assert by_token["10"] == ["mười"]
    assert " ".join(by_token["Dr."]) == "tiến sĩ"
    assert " ".join(by_token["10:30."]) == "mười giờ ba mươi phút."
    assert by_token["[[xin"] == ["xin"] and "[v2]" not in by_token
    assert [s.text for s in stamps.sentences] == [
        "Ngày 5/12/2024, TP.HCM có 10 triệu dân.",
        "Dr. Smith nói [xin chào] lúc 10:30.",
    ]
    assert [text[s.char_start : s.char_end] for s in stamps.sentences][
        1
    ] == "Dr. Smith nói [[xin chào] lúc 10:30."
    starts = [w.start for w in stamps.words]
    assert starts == sorted(starts)
