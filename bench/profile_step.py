"""Profile one DiT forward (the cost of one ODE step) of f5vi or of upstream F5-TTS on the same checkpoint.

Usage (from the repository root)::

    .venv/bin/python bench/profile_step.py --impl f5vi --config small --frames 960
    bench/out/upstream-venv/bin/python bench/profile_step.py --impl upstream --config small --frames 960

One forward with CFG packing (conditional + unconditional as a batch of 2, as both samplers run it), text
embedding cached, on random inputs of ``--frames`` frames. Reports the median process CPU time and wall time
over ``--reps`` calls after one warm-up call, the minor page faults of one call, and (``--ops``) the
torch.profiler table of one call. ``--mallopt`` sets glibc's mmap threshold to 32 MiB first (see RESULTS.md).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import importlib
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CKPT_ROOT = REPO_ROOT / "bench" / "out" / "ckpt"


def load_transformer(impl: str, directory: Path) -> Any:
    if impl == "f5vi":
        from f5vi.engine.checkpoint import load_model

        return load_model(directory).cfm.transformer
    sys.path.insert(0, str(REPO_ROOT))
    importlib.import_module("bench.upstream_runner")  # registers the training-only stand-ins first
    from f5_tts.infer.utils_infer import load_model as upstream_load_model
    from f5_tts.model import DiT

    arch = json.loads((directory / "config.json").read_text(encoding="utf-8"))["arch"]
    model = upstream_load_model(
        DiT, arch, str(directory / "model_last.pt"), vocab_file=str(directory / "vocab.txt")
    )
    model.eval()  # CFM.sample() does this; upstream's load_model leaves dropout on
    return model.transformer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--impl", choices=["f5vi", "upstream"], required=True)
    parser.add_argument("--config", default="small")
    parser.add_argument("--frames", type=int, default=960)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--ops", action="store_true", help="print the torch.profiler op table")
    parser.add_argument("--mallopt", action="store_true", help="mallopt(M_MMAP_THRESHOLD, 32 MiB) first")
    parser.add_argument(
        "--dtype", default="float32", choices=["float32", "bfloat16"], help="backbone weights and inputs"
    )
    args = parser.parse_args(argv)
    if args.mallopt:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD
    import torch

    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    transformer = load_transformer(args.impl, CKPT_ROOT / args.config).to(dtype)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, args.frames, 100, generator=generator).to(dtype)
    cond = torch.randn(1, args.frames, 100, generator=generator).to(dtype)
    text = torch.randint(0, 90, (1, 150), generator=generator)
    # f5vi keeps the flow time in fp32 (its time embedding casts); upstream wants the model dtype
    t = torch.tensor([0.3], dtype=torch.float32 if args.impl == "f5vi" else dtype)

    def step() -> None:
        transformer(x=x, cond=cond, text=text, time=t, cfg_infer=True, cache=True)

    cpu, wall = [], []
    with torch.inference_mode():
        step()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        step()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        for _ in range(args.reps):
            c0, w0 = time.process_time(), time.perf_counter()
            step()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        print(
            f"{args.impl} {args.config} {args.dtype} frames={args.frames} threads={args.threads} "
            f"mallopt={args.mallopt}: "
            f"CPU {statistics.median(cpu):.3f} s (min {min(cpu):.3f}), wall {statistics.median(wall):.3f} s, "
            f"minor page faults per forward {faults}"
        )
        if args.ops:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as prof:
                step()
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))
    return 0


if __name__ == "__main__":
    sys.exit(main())
