"""A text with voice tags is normalised in ONE normaliser run (issue 25, item 4).

``[vi_north_male] a.`` x 1000 took 59.6 s against 0.4 s untagged: every part (and every voice's
transcript) started its own vinorm process. The real vinorm binary runs here behind a wrapper that
counts its starts; the parts come back split as if each had been normalised alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_helpers import REFERENCE_TEXT, SpokenClip, speak
from f5vi.config import Settings
from f5vi.engine.planning import TextPlanner
from f5vi.engine.synthesizer import Synthesizer
from f5vi.engine.text.normalizer import normalize_text
from f5vi.engine.text.vinorm_runner import VinormRunner, find_vinorm_package
from f5vi.engine.types import ReferenceVoice, SynthesisRequest

PARTS = [
    "Năm 2024 có 365 ngày.",
    "Lúc 10:30 trời mưa.",
    "Giá 1.500.000đ, rẻ lắm!",
    "Xin chào các bạn.",
    "Hôm nay là ngày 2/9.",
    "TP.HCM cách đây 3,5 km",
    "Tăng 25%",
    "ABC",
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> SpokenClip:
    return speak(tmp_path_factory.mktemp("ref"), REFERENCE_TEXT)


def counting_vinorm(directory: Path) -> tuple[VinormRunner, Path]:
    package = find_vinorm_package()
    if package is None:
        pytest.skip("vinorm is not installed")
    count = directory / "starts"
    wrapper = directory / "vinorm-counting"
    wrapper.write_text(
        f'#!/bin/sh\necho start >> "{count}"\nexec "{package / "main"}" "$@"\n', encoding="utf-8"
    )
    wrapper.chmod(0o755)
    return VinormRunner(package, binary=wrapper), count


def test_every_part_and_transcript_go_through_one_vinorm_run(
    tmp_path: Path, demo_synth: Synthesizer, reference: SpokenClip
) -> None:
    runner, count = counting_vinorm(tmp_path)
    planner = TextPlanner(demo_synth.vocab, Settings(normalizer="vinorm"), demo_synth.references, runner)
    voice = ReferenceVoice(audio_path=reference.path, transcript=REFERENCE_TEXT, voice_id="v1")
    other = ReferenceVoice(audio_path=reference.path, transcript="Hôm nay là ngày 2/9.", voice_id="v2")
    tags = ["v1", "v2"]
    text = " ".join(f"[{tags[i % 2]}] {PARTS[i % len(PARTS)]}" for i in range(40))
    plan = planner.plan(SynthesisRequest(text=text, reference=voice, voices=(("v1", voice), ("v2", other))))

    assert count.read_text().splitlines() == ["start"]  # one process for 40 parts and 2 transcripts
    assert plan.normalizer_used == "vinorm"  # no time-out, no fallback
    assert len(plan.segments) == 40
    alone = [normalize_text(part, vocab=demo_synth.vocab, vinorm=runner).text for part in PARTS]
    assert [s.normalized_text for s in plan.segments] == [alone[i % len(PARTS)] for i in range(40)]
    assert plan.segments[1].reference_text.startswith(
        normalize_text("Hôm nay là ngày 2/9.", vocab=demo_synth.vocab, vinorm=runner).text
    )
    assert "ba trăm sáu mươi lăm" in plan.segments[0].normalized_text  # vinorm really ran


def test_a_hung_normaliser_costs_one_time_out_for_a_tagged_text(
    tmp_path: Path, demo_synth: Synthesizer, reference: SpokenClip
) -> None:
    count = tmp_path / "starts"
    hung = tmp_path / "vinorm-hung"
    hung.write_text(f'#!/bin/sh\necho start >> "{count}"\nexec sleep 30\n', encoding="utf-8")
    hung.chmod(0o755)
    runner = VinormRunner(find_vinorm_package(), binary=hung, timeout_s=0.5, timeout_per_1000_chars_s=0.0)
    planner = TextPlanner(demo_synth.vocab, Settings(normalizer="vinorm"), demo_synth.references, runner)
    voice = ReferenceVoice(audio_path=reference.path, transcript=REFERENCE_TEXT, voice_id="v1")
    text = " ".join(f"[v1] {part}" for part in PARTS)
    plan = planner.plan(SynthesisRequest(text=text, reference=voice, voices=(("v1", voice),)))
    assert count.read_text().splitlines() == ["start"]  # one time-out, not one per part
    assert plan.normalizer_used == "hamster" and any("timed out" in w for w in plan.warnings)
    # and the default budget of a run is bounded whatever the length (it was 10 s + 0.5 s per 1000)
    assert VinormRunner().timeout_for(19_000) <= 8.0
