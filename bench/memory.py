"""Process memory measurement shared by the f5vi side and the upstream runner (no f5vi imports here).

``PeakRSS`` samples the resident set size of this process in a background thread while a run is going on,
because ``ru_maxrss`` only ever grows over the whole life of a process (model loading included) and so
cannot give the peak of one run. The sampling interval (5 ms) can miss a spike shorter than that; the figure
is a lower bound of the true peak, the same bound on both sides.
"""

from __future__ import annotations

import os
import resource
import threading
from types import TracebackType
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Current resident set size of this process (from /proc/self/statm; no psutil needed)."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * _PAGE


def max_rss_bytes() -> int:
    """Peak RSS over the life of this process (``ru_maxrss``, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakRSS:
    """Context manager: ``peak`` is the largest RSS seen while inside (sampled every ``interval`` s)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.start = 0
        self.peak = 0
        self.end = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> PeakRSS:
        self.start = self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.end = rss_bytes()
        self.peak = max(self.peak, self.end)


def cuda_memory(torch: Any, device: Any) -> dict[str, int]:
    """Allocated / reserved / peak bytes of the CUDA caching allocator (empty dict off CUDA)."""
    if getattr(device, "type", str(device)).split(":")[0] != "cuda":
        return {}
    return {
        "vram_allocated_bytes": int(torch.cuda.memory_allocated(device)),
        "vram_reserved_bytes": int(torch.cuda.memory_reserved(device)),
        "vram_peak_allocated_bytes": int(torch.cuda.max_memory_allocated(device)),
        "vram_peak_reserved_bytes": int(torch.cuda.max_memory_reserved(device)),
    }
