"""Odd-sample-rate uploads against a live server: ``python -m bench.odd_rate_upload URL PID``.

Posts a 2 s speech-like WAV (with its transcript, so no ASR runs) at each rate to ``POST /voices`` and
reports the wall time of each request, the server's resident memory before and after (``VmRSS``) and its
peak during the request (``VmHWM``, reset before each) from ``/proc/<PID>/status``. Issue 12: at 12,007 Hz
this took 14-21 s and raised the RSS from 0.95 to 5.6 GB; at 23,999 Hz the allocation failed (500).
Target: < 15 s and < 500 MB over the baseline. Uploads are deleted again afterwards.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

RATES = (12_007, 23_999, 44_100, 8_001, 383_999)


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``clear_refs`` 5; needs the server's user), so the peak is this
    request's; False when not allowed (the peak is then the process's since its start)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _wav(sample_rate: int, seconds: float = 2.0) -> bytes:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 140.0 + 20.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    buzz = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0.0, None) ** 0.5
    wave = (0.3 * buzz * envelope).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, wave / np.max(np.abs(wave)) * 0.6, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("pid", type=int, help="the server process (for /proc/<pid>/status)")
    parser.add_argument("--api-key")
    parser.add_argument("--rates", type=int, nargs="*", default=list(RATES))
    args = parser.parse_args(argv)
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    rows = []
    with httpx.Client(base_url=args.url, headers=headers, timeout=600) as client:
        baseline = _status_kib(args.pid, "VmRSS")
        for rate in args.rates:
            data = _wav(rate)
            peak_reset = _reset_peak(args.pid)
            before = _status_kib(args.pid, "VmRSS")
            started = time.perf_counter()
            response = client.post(
                "/voices",
                files={"file": (f"odd_{rate}.wav", data, "audio/wav")},
                data={"voice_id": f"odd_{rate}", "transcript": "xin chào các bạn", "overwrite": "true"},
            )
            wall = time.perf_counter() - started
            after, peak = _status_kib(args.pid, "VmRSS"), _status_kib(args.pid, "VmHWM")
            rows.append(
                {
                    "rate_hz": rate,
                    "bytes": len(data),
                    "status": response.status_code,
                    "seconds": round(wall, 3),
                    "rss_before_mb": round(before / 1024, 1),
                    "rss_after_mb": round(after / 1024, 1),
                    "peak_rss_mb": round(peak / 1024, 1),
                    "peak_over_baseline_mb": round((peak - baseline) / 1024, 1),
                    "peak_is_this_request": peak_reset,
                    "stored_sample_rate": response.json().get("sample_rate"),
                }
            )
            client.delete(f"/voices/odd_{rate}")
    print(json.dumps({"baseline_rss_mb": round(baseline / 1024, 1), "uploads": rows}, indent=2))
    ok = all(r["status"] == 201 and r["seconds"] < 15 and r["peak_over_baseline_mb"] < 500 for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
