"""``python -m f5vi normalize TEXT``: the text as the model will read it, without loading the model.

Plans through :class:`~f5vi.engine.planning.TextPlanner`, the planner every synthesis uses, built
from the configured model's vocab alone (no weights, no vocoder), so it answers in about a second;
with ``--demo-fallback`` the demo model's vocab when that one cannot be had. Prints the same report as
``POST /normalize`` (``--json``) or a readable summary.
"""

from __future__ import annotations

from f5vi.cli.synth import engine_request
from f5vi.config import Settings
from f5vi.engine.loading import load_planner
from f5vi.jobs.normalize_report import NormalizeResponse
from f5vi.jobs.requests import TTSInput
from f5vi.voices.library import VoiceLibrary


def normalize_report(
    settings: Settings,
    *,
    text: str,
    voice: str | None,
    speed: float | None,
    text_type: str = "auto",
    lexicon: tuple[tuple[str, str, bool], ...] = (),
) -> NormalizeResponse:
    """Plan ``text`` for ``voice`` (an id of the voices dir, or an audio file) at ``speed``."""
    voice = voice or VoiceLibrary.from_settings(settings).default_voice_id(settings.default_voice)
    params = TTSInput(text=text, ref_name=voice, speed=speed, text_type=text_type, lexicon=lexicon)
    request = engine_request(settings, params)
    planner, _ = load_planner(settings, demo_fallback=settings.demo_fallback)
    plan = planner.plan(request)
    return NormalizeResponse.from_plan(
        plan,
        voice_id=request.reference.voice_id or voice,
        speed=request.speed,
        cross_fade_seconds=settings.cross_fade_seconds,
    )


def render_report(report: NormalizeResponse) -> str:
    """Readable form: the normalised text, then each chunk with its estimated length, then warnings."""
    lines = [
        report.normalized_text,
        "",
        f"{report.chunk_count} chunk(s), about {report.estimated_duration_seconds:.1f} s with voice "
        f"{report.voice_id} at speed {report.speed} (normaliser: {report.normalizer})",
    ]
    several = len(report.segments) > 1
    lines += [
        f"  [{c.index + 1}] {c.estimated_seconds:5.1f} s  " + (f"({c.voice_id}) " if several else "") + c.text
        for c in report.chunks
    ]
    lines += [
        f"  lexicon: {h.matched!r} [{h.char_start}:{h.char_end}] -> {h.entry.say!r} ({h.entry.origin})"
        for h in report.lexicon_hits
    ]
    lines += [
        f"  part {n + 1}: speed {s.speed}, pause before {s.pause_before_seconds:.3f} s"
        for n, s in enumerate(report.segments)
        if report.ssml
    ]
    lines += [f"warning: {w}" for w in report.warnings]
    return "\n".join(lines)
