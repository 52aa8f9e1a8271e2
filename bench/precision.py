"""How far half-precision sampling lands from fp32 on the same checkpoint, noise and inputs.

Usage (from the repository root)::

    .venv/bin/python -m bench.precision --config small --frames 400 --ref-frames 150 --nfe 16

Variants: the backbone in bf16 or fp16, with the ODE state kept in fp32 (f5vi) or integrated in the model
dtype (what upstream does: on GPUs its default is fp16). Error = RMS of (variant - fp32) over the generated
frames, relative to the RMS of what the model changed there (fp32 output - initial noise). fp16 on a CPU
without native fp16 is emulated (slow) but numerically the same rounding as on a GPU, except that GPU kernels
accumulate differently. The weights are random (bench checkpoints), so this measures arithmetic, not audio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from f5vi.engine.checkpoint import load_model
from f5vi.engine.model import cfm as cfm_module

REPO_ROOT = Path(__file__).resolve().parents[1]
CKPT_ROOT = REPO_ROOT / "bench" / "out" / "ckpt"


def _sample(model, inputs: dict, nfe: int, state_dtype: torch.dtype) -> torch.Tensor:
    original = cfm_module.STATE_DTYPE
    cfm_module.STATE_DTYPE = state_dtype
    try:
        return model.cfm.sample(**inputs, steps=nfe).out.float()
    finally:
        cfm_module.STATE_DTYPE = original


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="small")
    parser.add_argument("--frames", type=int, default=400, help="total frames (reference + generated)")
    parser.add_argument("--ref-frames", type=int, default=150)
    parser.add_argument("--nfe", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ckpt-root", type=Path, default=CKPT_ROOT)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from bench.checkpoints import ensure_checkpoint

    directory = ensure_checkpoint(args.config, root=args.ckpt_root)
    model = load_model(directory)
    generator = torch.Generator().manual_seed(7)
    # a reference mel in the range of real log-mels (about -11 .. 1), and a text of realistic length
    cond = torch.randn(1, args.ref_frames, 100, generator=generator) * 2.0 - 5.0
    text = torch.randint(1, 90, (1, args.frames // 3), generator=generator)
    # the same fp32 noise for every variant (drawn in another dtype, randn gives other numbers)
    noise = cfm_module.initial_noise(
        [args.frames], 100, 1234, device=torch.device("cpu"), dtype=torch.float32
    )
    inputs = {"cond": cond, "text": text, "duration": args.frames, "noise": noise}

    results = []
    t0 = time.perf_counter()
    reference = _sample(model, inputs, args.nfe, torch.float32)
    gen = slice(args.ref_frames, args.frames)
    change = (reference[0, gen] - noise[0, gen]).pow(2).mean().sqrt().item()
    results.append({"variant": "fp32 (reference)", "seconds": round(time.perf_counter() - t0, 1)})
    for backbone in (torch.bfloat16, torch.float16):
        model.cfm.to(backbone)
        for state in (torch.float32, backbone):
            t0 = time.perf_counter()
            out = _sample(model, inputs, args.nfe, state)
            err = (out[0, gen] - reference[0, gen]).pow(2).mean().sqrt().item()
            name = f"backbone {str(backbone)[6:]}, state {str(state)[6:]}"
            results.append(
                {
                    "variant": name,
                    "rms_error": err,
                    "relative": err / change,
                    "max_abs_error": (out[0, gen] - reference[0, gen]).abs().max().item(),
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            print(json.dumps(results[-1]), flush=True)
        model.cfm.to(torch.float32)
    summary = {
        "config": args.config,
        "frames": args.frames,
        "ref_frames": args.ref_frames,
        "nfe": args.nfe,
        "rms_model_change": change,
        "results": results,
    }
    print(json.dumps(summary, indent=1))
    if args.json_out:
        args.json_out.write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
    sys.exit(0)
