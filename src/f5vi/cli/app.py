"""Command line: ``python -m f5vi {serve,synth,normalize,eval,voices,export-openapi,make-demo-model}``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from f5vi.config import Settings

OVERRIDES = ("host", "port", "model", "vocoder")
"""Flags that stand for the ``F5VI_`` variable of the same name, for the commands that have them."""


def apply_overrides(args: argparse.Namespace, settings: Settings) -> None:
    """What the command line says wins over the environment (``--demo-fallback``: ``F5VI_DEMO_FALLBACK``)."""
    for name in OVERRIDES:
        value = getattr(args, name, None)
        if value:
            setattr(settings, name, value)
    if getattr(args, "demo_fallback", False):
        settings.demo_fallback = True


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from f5vi.api.server import run

    apply_overrides(args, settings)
    run(settings)
    return 0


def _cmd_synth(args: argparse.Namespace, settings: Settings) -> int:
    from f5vi.cli.synth import synthesize_to_file
    from f5vi.jobs.requests import TTSInput
    from f5vi.jobs.subtitles import SubtitleFormat

    apply_overrides(args, settings)
    params = TTSInput(
        text=args.text if args.text is not None else Path(args.text_file).read_text(encoding="utf-8"),
        ref_name=args.voice,
        speed=args.speed,
        nfe_step=args.nfe_step,
        seed=args.seed,
        format=args.format or "",
        text_type=args.text_type,
        lexicon=_lexicon_arg(args.lexicon),
        verify=args.verify,
    )
    subtitles: dict[SubtitleFormat, Path] = {}
    if args.srt:
        subtitles["srt"] = Path(args.srt)
    if args.vtt:
        subtitles["vtt"] = Path(args.vtt)
    report = synthesize_to_file(settings, params, Path(args.out), subtitles)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


def _cmd_normalize(args: argparse.Namespace, settings: Settings) -> int:
    from f5vi.cli.normalize import normalize_report, render_report

    apply_overrides(args, settings)
    text = args.text if args.text is not None else Path(args.text_file).read_text(encoding="utf-8")
    report = normalize_report(
        settings,
        text=text,
        voice=args.voice,
        speed=args.speed,
        text_type=args.text_type,
        lexicon=_lexicon_arg(args.lexicon),
    )
    if args.json:
        print(json.dumps(report.model_dump(mode="json"), ensure_ascii=False, indent=2))
    else:
        print(render_report(report))
    return 0


def _cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from f5vi.cli.evaluate import evaluate

    apply_overrides(args, settings)
    report = evaluate(
        settings,
        Path(args.out),
        list_file=Path(args.list) if args.list else None,
        limit=args.limit,
        demo_fallback=args.demo_fallback,
        compare=args.compare,
        seed=args.seed,
    )
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


def _lexicon_arg(path: str | None) -> tuple[tuple[str, str, bool], ...]:
    """``--lexicon FILE``: a lexicon file (docs/text.md) used as the request's own entries."""
    if not path:
        return ()
    from f5vi.engine.text.lexicon import read_lexicon_file

    return tuple((e.term, e.say, e.case_sensitive) for e in read_lexicon_file(Path(path), "request"))


def _add_text_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lexicon",
        metavar="FILE",
        help="respellings for this text ('TERM = READING' lines, docs/text.md); they win over the "
        "voice's and the server's (F5VI_LEXICON_PATHS)",
    )
    parser.add_argument(
        "--text-type",
        choices=("auto", "text", "ssml"),
        default="auto",
        help="ssml: the text is SSML (docs/text.md); auto (default): SSML if it starts with <speak>",
    )


def _cmd_voices(args: argparse.Namespace, settings: Settings) -> int:
    from f5vi.voices.library import VoiceLibrary

    for voice in VoiceLibrary.from_settings(settings).list():
        transcript = voice.transcript or "(no transcript: will be transcribed on first use)"
        origin = "shipped " if voice.read_only else "uploaded"
        print(f"{voice.id:24s} {origin} {voice.duration_seconds:5.2f}s  {transcript}")
    return 0


def _cmd_export_openapi(args: argparse.Namespace, settings: Settings) -> int:
    from f5vi.api.openapi import write_openapi

    write_openapi(Path(args.out))
    print(f"wrote {args.out}")
    return 0


def _cmd_make_demo_model(args: argparse.Namespace, settings: Settings) -> int:
    from f5vi.engine.demo import demo_vocoder_dir, make_demo_model

    path = make_demo_model(Path(args.directory), seed=args.seed, vocoder=args.vocoder)
    print(f"wrote a DEMO model (random weights: it produces noise, not speech) to {path}")
    print(f"use it with F5VI_MODEL={path} F5VI_VOCODER={demo_vocoder_dir(path)} ({args.vocoder})")
    return 0


def _add_demo_fallback(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument(
        "--demo-fallback",
        action="store_true",
        help=f"if the configured model cannot be loaded, {verb} the (noise-producing) demo model instead"
        " (same as F5VI_DEMO_FALLBACK=1); says so loudly",
    )


def _hint(code: str, message: str) -> str | None:
    """What fixes a model or vocoder that cannot be loaded, in the CLI's flags and variables."""
    if code != "model_load_failed":
        return None
    if "vocoder" in message:
        return "fix: --vocoder DIR (or F5VI_VOCODER) naming a local Vocos directory"
    return (
        "fix: --model SOURCE (or F5VI_MODEL) naming a local checkpoint, or --demo-fallback "
        "(F5VI_DEMO_FALLBACK=1) for the demo model (noise)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="f5vi", description="Vietnamese text-to-speech (F5-TTS).")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    _add_demo_fallback(serve, "serve")
    serve.set_defaults(func=_cmd_serve)

    synth = sub.add_parser("synth", help="synthesise text to an audio file")
    text = synth.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="the text; [voice_id] switches to that voice ([[ is a literal [)")
    text.add_argument("--text-file")
    synth.add_argument(
        "--voice",
        required=True,
        help="voice id from the voices dir, or a path to a .wav; says the text "
        "before the first [voice_id] tag (tags name voices of the voices dir)",
    )
    synth.add_argument("--out", required=True)
    synth.add_argument("--model", help="model source (dir, checkpoint file or hub id); default F5VI_MODEL")
    synth.add_argument("--vocoder", help="vocoder source; default F5VI_VOCODER")
    synth.add_argument("--speed", type=float)
    synth.add_argument("--nfe-step", type=int)
    synth.add_argument("--seed", type=int)
    synth.add_argument("--format", default=None, help="wav (default from the file name), flac, mp3, ogg, pcm")
    _add_demo_fallback(synth, "use")
    _add_text_options(synth)
    synth.add_argument("--srt", metavar="FILE", help="also write SubRip subtitles of the text to FILE")
    synth.add_argument("--vtt", metavar="FILE", help="also write WebVTT subtitles of the text to FILE")
    synth.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="transcribe every chunk (F5VI_ASR_MODEL) and sample it again while its CER is above "
        "F5VI_VERIFY_MAX_CER, up to F5VI_VERIFY_MAX_ATTEMPTS; default F5VI_VERIFY",
    )
    synth.set_defaults(func=_cmd_synth)

    norm = sub.add_parser(
        "normalize", help="show the text as the model will read it: chunks, durations, warnings"
    )
    norm_text = norm.add_mutually_exclusive_group(required=True)
    norm_text.add_argument("text", nargs="?", help="the text (or use --text-file)")
    norm_text.add_argument("--text-file")
    norm.add_argument(
        "--voice",
        help="voice id from the voices dir, or a path to a .wav; default F5VI_DEFAULT_VOICE, else the "
        "first voice of the voices dir",
    )
    norm.add_argument("--speed", type=float, help="speaking rate (chunk sizes and durations depend on it)")
    norm.add_argument("--model", help="model source whose vocab to use; default F5VI_MODEL")
    norm.add_argument("--json", action="store_true", help="print the same JSON as POST /normalize")
    _add_demo_fallback(norm, "use the vocab of")
    _add_text_options(norm)
    norm.set_defaults(func=_cmd_normalize)

    ev = sub.add_parser(
        "eval",
        help="measure CER/WER, speaker similarity, duration and RTF over a test list "
        "(CSV, JSON, HTML report)",
    )
    ev.add_argument(
        "--out", required=True, help="directory for results.csv, results.json, report.html, audio/"
    )
    ev.add_argument("--list", help="test list: '<voice id><TAB><text>' per line; default: the shipped one")
    ev.add_argument("--limit", type=int, help="only the first N utterances")
    ev.add_argument("--model", help="model source; default F5VI_MODEL")
    ev.add_argument("--vocoder", help="vocoder source; default F5VI_VOCODER")
    ev.add_argument("--seed", type=int, default=0, help="seed of the first utterance (then +1 each)")
    ev.add_argument(
        "--demo-fallback",
        action="store_true",
        help="models that cannot load (TTS, ASR, speaker) fall back to random demo ones, flagged as demo",
    )
    ev.add_argument(
        "--compare",
        nargs="+",
        metavar="KEY=VALUE",
        help="also run a second configuration with these changes and report the differences; keys: "
        "model (checkpoint), vocoder, nfe_step, use_epss, dtype, verify, verify_max_cer, "
        "verify_max_attempts, speed",
    )
    ev.set_defaults(func=_cmd_eval)

    voices = sub.add_parser("voices", help="list reference voices (shipped, then uploaded)")
    voices.set_defaults(func=_cmd_voices)

    export = sub.add_parser("export-openapi", help="write the OpenAPI document of the HTTP API")
    export.add_argument("--out", default="openapi.json")
    export.set_defaults(func=_cmd_export_openapi)

    demo = sub.add_parser(
        "make-demo-model", help="write a tiny random-weight model (noise) for trying the stack"
    )
    demo.add_argument("directory")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--vocoder",
        choices=("vocos", "bigvgan"),
        default="vocos",
        help="vocoder (and mel front end) of the demo model: DIR/vocos or DIR/bigvgan (default vocos)",
    )
    demo.set_defaults(func=_cmd_make_demo_model)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    from f5vi.logging_setup import configure_logging

    configure_logging(settings)  # text, or JSON lines with F5VI_LOG_JSON=1
    from f5vi.engine.errors import EngineError
    from f5vi.engine.text.lexicon import LexiconFileError
    from f5vi.voices.errors import VoiceLibraryError

    try:
        return int(args.func(args, settings))
    except (EngineError, VoiceLibraryError) as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        hint = _hint(exc.code, exc.message)
        if hint:
            print(hint, file=sys.stderr)
        return 2
    except LexiconFileError as exc:
        print(f"error [invalid_lexicon_file]: {exc}", file=sys.stderr)
        return 2
