"""One ODE step at bucketed batch shapes: eager, CUDA-graph replay and ``torch.compile`` timed side by side.

``python -m bench.step_graphs --config base --device cuda`` (the optional last part of
``bench/device_run.sh``, ``COMPILE=1``). One step is what the shared sampler runs per evaluation: one
backbone forward of ``B`` items of ``F`` frames with CFG packing (conditional + unconditional, so
``2B`` rows), the text embedding cached, a padding mask when ``B > 1``. For each ``BxF`` of
``--shapes`` it reports the median step time (CUDA events on a GPU, wall clock on a CPU) and frames per
second, then, on CUDA, the same forward captured once as a CUDA graph and replayed (with the largest
difference from the eager output), and for ``--compile-shapes`` the ``torch.compile`` forward
(``dynamic=False``: one compile per shape, its first call timed separately). A capture or compile
that fails is recorded with its error, not raised: that it fails is a finding too. The JSON is
rewritten after every shape, so a run cut short by its timeout keeps what it measured.

Random weights (``bench/checkpoints.py``): speed depends on the shapes only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.checkpoints import OUT_DIR as CKPT_DIR
from bench.checkpoints import ensure_checkpoint


def _shapes(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        if part.strip():
            batch, frames = part.lower().split("x")
            out.append((int(batch), int(frames)))
    return out


def _timer(device: torch.device, fn: Callable[[], Any], reps: int) -> list[float]:
    """Seconds per call of ``fn`` (``reps`` calls after it has run once)."""
    fn()
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        else:
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
    return times


def _inputs(batch: int, frames: int, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(batch * 100_003 + frames)
    text_len = max(8, frames // 6)
    return {
        "x": torch.randn(batch, frames, 100, generator=generator).to(device, dtype),
        "cond": torch.randn(batch, frames, 100, generator=generator).to(device, dtype),
        "text": torch.randint(0, 90, (batch, text_len), generator=generator).to(device),
        "time": torch.rand(batch, generator=generator).to(device),
        "mask": torch.ones(batch, frames, dtype=torch.bool, device=device) if batch > 1 else None,
    }


def measure_shape(
    transformer: Any,
    batch: int,
    frames: int,
    args: argparse.Namespace,
    device: torch.device,
    compile_it: bool,
) -> dict[str, Any]:
    dtype = next(transformer.parameters()).dtype
    inputs = _inputs(batch, frames, device, dtype)

    def step(model: Any = transformer) -> torch.Tensor:
        return model(**inputs, cfg_infer=True, cache=True)

    row: dict[str, Any] = {"batch": batch, "frames": frames, "rows": 2 * batch}
    transformer.clear_cache()
    with torch.inference_mode():
        eager_out = step().clone()
        eager = _timer(device, step, args.reps)
    row["eager_ms"] = statistics.median(eager) * 1000
    row["eager_frames_per_s"] = batch * frames / statistics.median(eager)
    if device.type == "cuda":
        row.update(_graph(step, eager_out, device, args.reps))
    if compile_it:
        row.update(_compiled(transformer, inputs, eager_out, device, args.reps))
    return row


def _graph(
    step: Callable[[], torch.Tensor], eager_out: torch.Tensor, device: torch.device, reps: int
) -> dict[str, Any]:
    try:
        with torch.inference_mode():
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(2):
                    step()
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = step()
            graph.replay()
            torch.cuda.synchronize(device)
            diff = float((static_out.float() - eager_out.float()).abs().max())
            times = _timer(device, graph.replay, reps)
    except Exception as exc:  # a forward that cannot be captured is a result, not a crash
        return {"graph_error": f"{type(exc).__name__}: {exc}"[:400]}
    return {"graph_ms": statistics.median(times) * 1000, "graph_max_abs_diff": diff}


def _compiled(
    transformer: Any, inputs: dict[str, Any], eager_out: torch.Tensor, device: torch.device, reps: int
) -> dict[str, Any]:
    try:
        compiled = torch.compile(transformer, dynamic=False)
        with torch.inference_mode():
            started = time.perf_counter()
            out = compiled(**inputs, cfg_infer=True, cache=True)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            first = time.perf_counter() - started
            diff = float((out.float() - eager_out.float()).abs().max())
            times = _timer(device, lambda: compiled(**inputs, cfg_infer=True, cache=True), reps)
    except Exception as exc:
        return {"compile_error": f"{type(exc).__name__}: {exc}"[:400]}
    return {
        "compile_first_call_s": first,
        "compile_ms": statistics.median(times) * 1000,
        "compile_max_abs_diff": diff,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m bench.step_graphs", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=["tiny", "small", "base"], default="base")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="float16", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--shapes", default="1x1024,4x1024,16x1024,1x2048,8x2048", help="BxF list")
    p.add_argument("--compile-shapes", default="", help="BxF list also timed with torch.compile")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--ckpt-root", type=Path, default=CKPT_DIR)
    p.add_argument("--json-out", type=Path, required=True)
    args = p.parse_args(argv)
    from f5vi.engine.checkpoint import load_model

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    transformer = load_model(ensure_checkpoint(args.config, root=args.ckpt_root)).cfm.transformer
    transformer = transformer.to(device=device, dtype=dtype).eval()
    compile_shapes = set(_shapes(args.compile_shapes))
    report: dict[str, Any] = {
        "config": args.config,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "dtype": args.dtype,
        "torch": torch.__version__,
        "reps": args.reps,
        "shapes": [],
    }
    for batch, frames in _shapes(args.shapes):
        row = measure_shape(transformer, batch, frames, args, device, (batch, frames) in compile_shapes)
        report["shapes"].append(row)
        print(json.dumps(row), flush=True)
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
    sys.exit(0)
