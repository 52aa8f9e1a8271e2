"""What verification costs: ASR seconds per second of audio, and the wall time ``verify`` adds.

Real PhoWhisper and real F5-TTS weights cannot be downloaded here, so both models are random-weight
models of the real sizes in the real layouts (speed depends on shapes, not values):

* ASR: a Whisper with PhoWhisper-small's shape (``openai/whisper-small``'s config: 12 + 12 layers,
  d_model 768, 51,865-token output) saved with f5vi's demo tokenizer, run through the real
  :class:`~f5vi.engine.asr.Transcriber` (``transcribe_many``, batches of 8). Random weights would stop
  or babble at random, so the transcript length is fixed: end-of-text is suppressed and every clip
  generates ``--tokens-per-second`` x its duration tokens (Whisper's BPE writes Vietnamese at roughly
  2–3 tokens per syllable, ~4 syllables per second of speech: 10 is a fair middle).
* TTS: ``bench.checkpoints`` (F5TTS_Small by default, random N(0, 0.02²) weights, upstream layout).

Verify's added time is measured three ways on the same texts and seeds: off; on with every chunk passing
(``max_cer`` huge: one ASR pass per chunk, nothing re-sampled: the least it costs); on with every chunk
failing (``max_cer`` 0, ``--attempts`` samplings: the most it costs). Wall time on a shared machine
depends on its load; the process's CPU time with one torch thread does not (much), so the comparison is
made on CPU seconds and both are written.

    python -m bench.verify_cost [--config small] [--nfe 8] [--texts sentence paragraph] [--attempts 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.checkpoints import ensure_checkpoint
from bench.texts import TEXTS

OUT = Path(__file__).resolve().parent / "out"


def build_whisper_small_shaped(out_dir: Path, tokens_per_clip_cap: int = 448) -> Path:
    """Random weights, whisper-small's shapes, the demo tokenizer; end-of-text never generated."""
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    from f5vi.engine.demo_asr import build_tiny_whisper

    if (out_dir / "model.safetensors").is_file():
        return out_dir
    build_tiny_whisper(out_dir)  # tokenizer, feature extractor, generation config of the real layout
    tiny = GenerationConfig.from_pretrained(out_dir)
    from transformers import WhisperTokenizer

    tokenizer = WhisperTokenizer.from_pretrained(out_dir)
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    sot = tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    vocab = 51_865
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=vocab,
        num_mel_bins=80,
        d_model=768,
        encoder_layers=12,
        decoder_layers=12,
        encoder_attention_heads=12,
        decoder_attention_heads=12,
        encoder_ffn_dim=3072,
        decoder_ffn_dim=3072,
        max_source_positions=1500,
        max_target_positions=448,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
    )
    model = WhisperForConditionalGeneration(config).eval()
    letters = {i for i in range(len(tokenizer)) if i not in tokenizer.all_special_ids}
    tiny.suppress_tokens = [i for i in range(vocab) if i not in letters]  # eot included: fixed lengths
    tiny.begin_suppress_tokens = None
    tiny.max_length = tokens_per_clip_cap
    model.generation_config = tiny
    model.save_pretrained(out_dir)
    return out_dir


def asr_speed(asr: Any, seconds: list[float], tokens_per_second: float, repeats: int) -> list[dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(0)
    asr.max_new_tokens = 4
    asr.transcribe_many([np.zeros(24_000, dtype=np.float32)], 24_000)  # warm-up
    for duration in seconds:
        wave = (rng.standard_normal(int(duration * 24_000)) * 0.05).astype(np.float32)
        asr.max_new_tokens = max(1, round(tokens_per_second * duration))
        times, cpu = [], []
        for _ in range(repeats):
            started, cpu_started = time.perf_counter(), time.process_time()
            asr.transcribe_many([wave], 24_000)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
        rows.append(
            {
                "audio_seconds": duration,
                "tokens": asr.max_new_tokens,
                "asr_seconds": round(min(times), 3),
                "asr_cpu_seconds": round(min(cpu), 3),
                "asr_cpu_s_per_audio_s": round(min(cpu) / duration, 3),
            }
        )
    return rows


def verify_cost(
    synth: Any, texts: list[str], nfe: int, attempts: int, tokens_per_second: float
) -> list[dict[str, Any]]:
    from f5vi.engine.types import ReferenceVoice, SynthesisRequest, VerifyOptions

    voice_dir = Path(__file__).resolve().parents[1] / "voices"
    ref = ReferenceVoice(
        voice_dir / "vi_north_male.wav", (voice_dir / "vi_north_male.txt").read_text("utf-8").strip()
    )
    modes = {
        "off": None,
        "on, every chunk passes": VerifyOptions(max_cer=1e9, max_attempts=attempts),
        f"on, every chunk fails ({attempts} samplings)": VerifyOptions(max_cer=0.0, max_attempts=attempts),
    }
    rows = []
    for text_id in texts:
        text = TEXTS[text_id]
        plan = synth.plan(SynthesisRequest(text=text, reference=ref, nfe_step=nfe, seed=1234))
        seconds = plan.estimated_seconds(0.15)
        synth.asr().max_new_tokens = max(1, round(tokens_per_second * seconds / len(plan.chunks)))
        base = None
        for mode, options in modes.items():
            request = SynthesisRequest(text=text, reference=ref, nfe_step=nfe, seed=1234, verify=options)
            started, cpu_started = time.perf_counter(), time.process_time()
            result = synth.synthesize(request)
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            base = cpu if base is None else base
            rows.append(
                {
                    "text": text_id,
                    "chunks": len(result.chunks),
                    "audio_seconds": round(result.duration_seconds, 2),
                    "mode": mode,
                    "wall_seconds": round(wall, 2),
                    "cpu_seconds": round(cpu, 2),
                    "asr_wall_seconds": round(result.timings.get("asr_seconds", 0.0), 2),
                    "cpu_vs_off": round(cpu / base, 2),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"### {report['date']} · verify cost · {report['config']} · NFE {report['nfe']} · float32 · cpu",
        "",
        f"Machine: {m['cpu']}, {m['threads']} torch threads, load average at start {m['load_start']}, "
        f"at end {m['load_end']}. ASR: random-weight Whisper of PhoWhisper-small's shape, "
        f"{report['tokens_per_second']} generated tokens per second of audio, batches of 8.",
        "",
        "| audio s | tokens | ASR wall s | ASR CPU s | ASR CPU s per audio s |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['audio_seconds']} | {r['tokens']} | {r['asr_seconds']} | {r['asr_cpu_seconds']} | "
        f"{r['asr_cpu_s_per_audio_s']} |"
        for r in report["asr"]
    ]
    lines += [
        "",
        "| text | chunks | audio s | verify | wall s | CPU s | of which ASR (wall s) | CPU × off |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['text']} | {r['chunks']} | {r['audio_seconds']} | {r['mode']} | {r['wall_seconds']} | "
        f"{r['cpu_seconds']} | {r['asr_wall_seconds']} | {r['cpu_vs_off']} |"
        for r in report["verify"]
    ]
    return "\n".join(lines) + "\n"


def _cpu_name() -> str:
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.verify_cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=["tiny", "small", "base"], default="small")
    p.add_argument("--nfe", type=int, default=8)
    p.add_argument("--texts", nargs="+", default=["sentence", "paragraph"])
    p.add_argument("--attempts", type=int, default=2)
    p.add_argument("--tokens-per-second", type=float, default=10.0)
    p.add_argument("--asr-seconds", type=float, nargs="+", default=[2.0, 5.0, 10.0, 20.0])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU s = compute, load-proof)")
    p.add_argument("--json-out", type=Path, default=None)
    p.add_argument("--results-md", type=Path, default=None)
    args = p.parse_args(argv)

    import torch

    from f5vi.config import Settings
    from f5vi.engine.asr import Transcriber
    from f5vi.engine.synthesizer import Synthesizer

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    ckpt = ensure_checkpoint(args.config)
    whisper = build_whisper_small_shaped(OUT / "whisper-small-shaped")
    asr = Transcriber(str(whisper), device="cpu")
    asr.load()
    asr_rows = asr_speed(asr, args.asr_seconds, args.tokens_per_second, args.repeats)
    for row in asr_rows:
        print(json.dumps(row), flush=True)
    settings = Settings(model=str(ckpt), vocoder=str(ckpt / "vocos"), device="cpu", dtype="float32")
    synth = Synthesizer.from_settings(settings)
    synth.transcriber = asr
    rows = verify_cost(synth, args.texts, args.nfe, args.attempts, args.tokens_per_second)

    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "config": args.config,
        "nfe": args.nfe,
        "tokens_per_second": args.tokens_per_second,
        "machine": {
            "cpu": _cpu_name(),
            "threads": args.threads,
            "load_start": round(load_start, 2),
            "load_end": round(os.getloadavg()[0], 2),
        },
        "asr": asr_rows,
        "verify": rows,
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))
    text = markdown(report)
    print(text)
    if args.results_md:
        with args.results_md.open("a", encoding="utf-8") as handle:
            handle.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
