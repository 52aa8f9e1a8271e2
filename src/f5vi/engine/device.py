"""Pick the torch device and dtype the engine runs on."""

from __future__ import annotations

import torch

from f5vi.engine.errors import InvalidParameterError

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` prefers CUDA, then Apple MPS, then CPU; an explicit name must be usable."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError(f"device {name!r} requested but CUDA is not available")
    return device


def cpu_runs_natively(dtype: torch.dtype) -> bool:
    """Whether this CPU has instructions for ``dtype`` matrix products (oneDNN's own check).

    bf16 needs AVX512-BF16 or AMX (Zen 4+, Cooper Lake+); fp16 needs AVX512-FP16 or AMX-FP16. Without
    them torch emulates half precision, which is slower than fp32, so the engine refuses it.
    """
    if dtype == torch.float32:
        return True
    checks = {torch.bfloat16: "_is_mkldnn_bf16_supported", torch.float16: "_is_mkldnn_fp16_supported"}
    if dtype not in checks or not torch.backends.mkldnn.is_available():
        return False
    try:
        return bool(getattr(torch.ops.mkldnn, checks[dtype])())
    except (AttributeError, RuntimeError):  # an older/other build without the probe
        return False


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto``: fp16 on CUDA (as upstream), fp32 on CPU/MPS.

    fp16 rather than bf16 on GPUs: both run at the same tensor-core rate, and with 3 more mantissa bits fp16
    landed 4x closer to the fp32 result (``bench/precision.py``: 0.33 % vs 1.26 % relative RMS error on the
    Small config, NFE 16); it is also what upstream's inference uses, so the checkpoints are known to stay in
    range. fp32 stays the CPU default even where :func:`cpu_runs_natively` allows bf16: it is the precision
    the golden parity data is checked in. ``F5VI_DTYPE=bfloat16`` opts into bf16 on either (speed and error
    figures: bench/RESULTS.md). The vocoder and mel extraction always run in fp32; this dtype is for the DiT
    only.
    """
    if name != "auto":
        return _DTYPES[name]
    if device.type == "cuda":
        return torch.float16
    return torch.float32
