"""``python -m f5vi synth``: one synthesis from the command line, same engine as the server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from f5vi.config import Settings
from f5vi.engine.asr import Transcriber
from f5vi.engine.audio import encode_audio
from f5vi.engine.synthesizer import Synthesizer
from f5vi.engine.types import ReferenceVoice, SynthesisRequest
from f5vi.voices.library import VoiceLibrary


def reference_for(voice: str, settings: Settings) -> ReferenceVoice:
    """A voice id from the library, or a path to an audio file (its ``.txt`` beside it, or transcribed)."""
    path = Path(voice)
    directory, name = (
        (path.parent, path.name) if path.suffix and path.is_file() else (settings.voices_dir, voice)
    )
    library = VoiceLibrary(directory, Transcriber(settings.asr_model), settings.max_reference_seconds)
    return library.ensure_transcript(library.resolve(name)).to_reference()


def synthesize_to_file(
    settings: Settings,
    *,
    text: str,
    voice: str,
    out: Path,
    speed: float | None = None,
    nfe_step: int | None = None,
    seed: int | None = None,
    audio_format: str | None = None,
) -> dict[str, Any]:
    """Load the engine, synthesise ``text`` with ``voice`` and write ``out``; returns a report."""
    started = time.perf_counter()
    synthesizer = Synthesizer.from_settings(settings)
    loaded = time.perf_counter()
    request = SynthesisRequest(
        text=text,
        reference=reference_for(voice, settings),
        speed=settings.speed if speed is None else speed,
        nfe_step=settings.nfe_step if nfe_step is None else nfe_step,
        cfg_strength=settings.cfg_strength,
        sway_sampling_coef=settings.sway_sampling_coef,
        ode_method=settings.ode_method,
        seed=seed,
        cross_fade_seconds=settings.cross_fade_seconds,
    )
    result = synthesizer.synthesize(request)
    fmt = audio_format or (out.suffix.lstrip(".").lower() or "wav")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(encode_audio(result.audio, result.sample_rate, fmt))
    return {
        "out": str(out),
        "format": fmt,
        "model": synthesizer.info.model,
        "demo_model": synthesizer.info.is_demo,
        "device": synthesizer.info.device,
        "seed": result.seed,
        "duration_seconds": round(result.duration_seconds, 3),
        "chunks": len(result.chunks),
        "normalized_text": result.normalized_text,
        "warnings": result.warnings,
        "load_seconds": round(loaded - started, 3),
        "synthesis_seconds": round(result.timings.get("total_seconds", 0.0), 3),
        "rtf": round(result.timings.get("total_seconds", 0.0) / max(result.duration_seconds, 1e-9), 4),
    }
