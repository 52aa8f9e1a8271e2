"""``python -m f5vi synth``: one synthesis from the command line, same engine as the server."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from f5vi.config import Settings
from f5vi.engine.asr import Transcriber
from f5vi.engine.audio import encode_audio
from f5vi.engine.device import resolve_device
from f5vi.engine.loading import DEMO_OUTPUT_WARNING, load_synthesizer
from f5vi.engine.synthesizer import demo_asr_dir, make_transcriber
from f5vi.engine.types import SynthesisRequest
from f5vi.jobs.requests import RequestBuilder, TTSInput, load_lexicons
from f5vi.jobs.subtitles import SubtitleFormat, render
from f5vi.jobs.voice_turn import with_voices_ready
from f5vi.voices.library import Voice, VoiceLibrary


def voice_for(voice: str, settings: Settings, library: VoiceLibrary) -> Voice:
    """A voice id of the server's ``library`` (shipped or uploaded), or a path to an audio file (its
    ``.txt`` beside it, or transcribed and written there)."""
    path = Path(voice)
    if path.suffix and path.is_file():
        beside = VoiceLibrary(path.parent, library.transcriber, settings.max_reference_seconds)
        return beside.ensure_transcript(beside.resolve(path.name))
    return library.ensure_transcript(library.resolve(voice))


def engine_request(
    settings: Settings, params: TTSInput, transcriber: Transcriber | None = None
) -> SynthesisRequest:
    """The engine's request for ``params``: its voice, the voices its ``[voice_id]`` tags name (from
    the server's library, always by id) with transcripts, the settings' defaults; checked by the
    server's own :class:`~f5vi.jobs.requests.RequestBuilder`."""
    library = VoiceLibrary.from_settings(settings, transcriber or Transcriber(settings.asr_model))
    voice = voice_for(params.ref_name, settings, library)
    prepared = RequestBuilder(settings, library, load_lexicons(settings)).prepare_for(params, voice)
    # no engine runs beside the CLI: the tagged voices are transcribed at once
    return asyncio.run(with_voices_ready(prepared.synthesis, library, None))


def synthesize_to_file(
    settings: Settings, params: TTSInput, out: Path, subtitles: dict[SubtitleFormat, Path] | None = None
) -> dict[str, Any]:
    """Load the engine, synthesise ``params`` and write ``out``; returns a report.

    ``params.ref_name`` is a voice id of the library or a path to an audio file; ``params.format``
    empty means: from the file name's extension. With ``settings.demo_fallback`` a model that cannot
    be loaded is replaced by the demo model (noise), loudly, as ``serve`` does. ``subtitles`` maps
    ``srt``/``vtt`` to files to write (the cues show ``params.text`` as given; :mod:`f5vi.jobs.subtitles`).
    """
    started = time.perf_counter()
    fmt = params.format or (out.suffix.lstrip(".").lower() or "wav")
    params = replace(params, format=fmt)
    # one recogniser (loaded on first use) for the voice's transcript and for verification
    transcriber = make_transcriber(settings, str(resolve_device(settings.device)))
    request = engine_request(settings, params, transcriber)  # checks the format too
    synthesizer = load_synthesizer(settings, demo_fallback=settings.demo_fallback)
    if synthesizer.info.is_demo and transcriber.demo_dir is None:  # a demo model: a demo recogniser may do
        transcriber.demo_dir = demo_asr_dir(settings)
    synthesizer.transcriber = transcriber
    loaded = time.perf_counter()
    result = synthesizer.synthesize(request)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(encode_audio(result.audio, result.sample_rate, fmt))
    stamps = result.timestamps.to_dict() if result.timestamps is not None else None
    written = {}
    for kind, path in (subtitles or {}).items():
        assert stamps is not None, "every synthesis result has timestamps"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(render(params.text, stamps, kind)), encoding="utf-8")
        written[kind] = str(path)
    return {
        "out": str(out),
        "format": fmt,
        "model": synthesizer.info.model,
        "demo_model": synthesizer.info.is_demo,
        "device": synthesizer.info.device,
        "seed": result.seed,
        "duration_seconds": round(result.duration_seconds, 3),
        "chunks": len(result.chunks),
        "segments": [{"voice_id": s.voice_id, "chunk_count": s.chunk_count} for s in result.segments],
        "normalized_text": result.normalized_text,
        "warnings": ([DEMO_OUTPUT_WARNING] if synthesizer.info.is_demo else []) + list(result.warnings),
        "load_seconds": round(loaded - started, 3),
        "synthesis_seconds": round(result.timings.get("total_seconds", 0.0), 3),
        "rtf": round(result.timings.get("total_seconds", 0.0) / max(result.duration_seconds, 1e-9), 4),
        "timestamps_method": stamps["method"] if stamps else None,
        "subtitles": written,
        "verification": None if result.verification is None else [v.as_dict() for v in result.verification],
        "demo_asr": transcriber.is_demo if result.verification is not None else None,
    }
