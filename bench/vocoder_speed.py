"""Vocoder speed: seconds of audio decoded per wall second, Vocos vs BigVGAN (``bench.run --vocoder``).

Both vocoders are built at their published sizes (``charactr/vocos-mel-24khz``: 13.5 M parameters;
``nvidia/bigvgan_v2_24khz_100band_256x``: 112 M) with random weights written in the published layouts
and loaded through f5vi's own loaders: the weights' values do not change the work, so the timing is
the real one without downloading anything. ``--vocoder-config tiny`` uses the demo sizes instead (for
the smoke test). Each measurement decodes a mel of ``--vocoder-seconds`` of audio ``--repeats`` times
after one warm-up call; the table reports the median. BigVGAN runs in float32 (as upstream); Vocos in
the dtype ``--dtype`` gives (float32 on CPU).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from f5vi.engine.bigvgan_io import load_bigvgan, save_random_bigvgan, tiny_bigvgan_config
from f5vi.engine.device import resolve_device
from f5vi.engine.vocoder import VocosConfig, load_vocoder, save_random_vocos

KINDS = ("vocos", "bigvgan")


def _build(kind: str, config: str, directory: Path, device: torch.device) -> Any:
    if kind == "bigvgan":
        save_random_bigvgan(directory, config=tiny_bigvgan_config() if config == "tiny" else None)
        return load_bigvgan(directory, device=device)
    vocos_config = VocosConfig(dim=64, intermediate_dim=128, num_layers=2) if config == "tiny" else None
    save_random_vocos(directory, config=vocos_config)
    return load_vocoder(directory, device=device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(kind: str, *, config: str, seconds: float, repeats: int, device: torch.device) -> dict[str, Any]:
    """Median wall time of decoding ``seconds`` of audio with a ``kind`` vocoder (published size)."""
    with tempfile.TemporaryDirectory(prefix=f"f5vi-bench-{kind}-") as tmp:
        vocoder = _build(kind, config, Path(tmp), device)
    frames = max(1, round(seconds * vocoder.sample_rate / vocoder.hop_length))
    mel = torch.randn(1, 100, frames, generator=torch.Generator().manual_seed(0)) - 4.0
    vocoder.decode(mel)  # warm-up
    _sync(device)
    walls = []
    for _ in range(repeats):
        started = time.perf_counter()
        vocoder.decode(mel)
        _sync(device)
        walls.append(time.perf_counter() - started)
    audio_seconds = frames * vocoder.hop_length / vocoder.sample_rate
    wall = statistics.median(walls)
    return {
        "vocoder": kind,
        "config": config,
        "params": sum(p.numel() for p in vocoder.parameters()),
        "audio_seconds": round(audio_seconds, 3),
        "wall_seconds": round(wall, 4),
        "audio_per_wall_second": round(audio_seconds / wall, 2),
        "repeats": repeats,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure the vocoders ``args.vocoder`` names (``both`` = Vocos then BigVGAN) and report them."""
    from bench.run import append_markdown, machine_info

    device = resolve_device(args.device)
    kinds = KINDS if args.vocoder == "both" else (args.vocoder,)
    mach = machine_info(device)
    rows = [
        measure(
            k, config=args.vocoder_config, seconds=args.vocoder_seconds, repeats=args.repeats, device=device
        )
        for k in kinds
    ]
    mach["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report = {"machine": mach, "device": str(device), "rows": rows}
    for row in rows:
        print(
            f"[bench] {row['vocoder']:8s} {row['params'] / 1e6:6.1f} M params: "
            f"{row['audio_per_wall_second']:.2f} s of audio per wall second "
            f"({row['audio_seconds']} s in {row['wall_seconds']} s)",
            flush=True,
        )
    if not args.no_md:
        append_markdown(args.results_md, markdown(report))
    return report


def markdown(report: dict[str, Any]) -> str:
    mach = report["machine"]
    gpu = f", GPU {mach['gpu']}" if "gpu" in mach else ""
    lines = [
        f"### Vocoder speed, {mach['date_utc']} ({report['device']})",
        "",
        f"Machine: {mach['cpu_model']}, {mach['cpu_count']} cores, {mach['mem_total_gib']} GiB{gpu}; torch "
        f"{mach['torch']}, {mach['torch_threads']} threads; load average at start {mach['loadavg_start']}, "
        f"at end {mach['loadavg_end']} (a shared machine).",
        "",
        "| vocoder | config | parameters | audio per call | wall (median) | audio s per wall s |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['vocoder']} | {r['config']} | {r['params'] / 1e6:.1f} M | {r['audio_seconds']} s | "
            f"{r['wall_seconds']} s (n={r['repeats']}) | **{r['audio_per_wall_second']}** |"
        )
    return "\n".join(lines) + "\n"
