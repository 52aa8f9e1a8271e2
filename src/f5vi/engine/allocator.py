"""glibc malloc tuning for the engine process.

By default glibc serves large blocks with fresh ``mmap`` pages and returns them on free, so every ODE step
page-faults its activations in again (~160,000 minor faults per step of the Small model on CPU). Raising the
mmap and trim thresholds keeps those blocks in the heap: -7 % per step measured (bench/RESULTS.md). The
same can be set from outside with ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` (the Docker image
does); elsewhere (musl, macOS) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's maximum for M_MMAP_THRESHOLD on 64-bit
TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024


def tune_glibc_malloc() -> bool:
    """Apply the thresholds unless the environment already chose its own; True when applied."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = (
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
        and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    )
    logger.debug("glibc malloc thresholds %s", "raised" if ok else "unchanged")
    return ok
