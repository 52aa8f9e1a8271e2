"""The compose smoke test's HTTP side (run by docker/compose-smoke.sh inside the f5vi image, host network).

    python compose_check.py submit    -> prints "<job id> <instance running it: a|b>"
    python compose_check.py finish ID -> waits through the balancer, downloads, checks the audio

Only the standard library and soundfile (both in the image).
"""

from __future__ import annotations

import io
import json
import sys
import time
import urllib.request
from typing import Any

LB = "http://127.0.0.1:18000"
INSTANCES = {"a": "http://127.0.0.1:18001", "b": "http://127.0.0.1:18002"}
TEXT = " ".join(f"Câu số {n} kể về thời tiết hôm nay rất đẹp và mát mẻ." for n in range(1, 9))


def call(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def until(fn: Any, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = fn()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"FAIL: {what} within {timeout:.0f} s")


def submit() -> None:
    until(lambda: call(f"{LB}/health").get("ready"), "the balancer answers /health", 600)
    for url in INSTANCES.values():
        until(lambda u=url: call(f"{u}/health").get("ready"), f"{url} ready", 600)
    job = call(f"{LB}/tts", {"text": TEXT, "ref_name": "vi_north_male", "nfe_step": 32})
    job_id = job["job_id"]

    def runner() -> str | None:
        for name, url in INSTANCES.items():
            if call(f"{url}/status")["current_job"] == job_id:
                return name
        return None

    name = until(runner, "an instance runs the job", 300)
    until(lambda: call(f"{LB}/tts/progress/{job_id}")["progress"] > 10, "progress through the balancer", 300)
    print(job_id, name)


def finish(job_id: str) -> None:
    import soundfile as sf

    final = until(
        lambda: (v := call(f"{LB}/tts/progress/{job_id}"))["state"] in ("succeeded", "failed", "cancelled") and v,
        "the job finishes on the other instance",
        900,
    )
    if final["state"] != "succeeded" or final["attempts"] < 2:
        raise SystemExit(f"FAIL: {final['state']} after {final['attempts']} attempt(s): {final.get('error')}")
    with urllib.request.urlopen(f"{LB}/output/{final['filename']}", timeout=30) as response:  # 307 -> bucket
        where, audio = response.geturl(), response.read()
    wave, rate = sf.read(io.BytesIO(audio))
    if not where.startswith("http://127.0.0.1:15000/") or rate != 24_000 or len(wave) == 0:
        raise SystemExit(f"FAIL: download from {where}: {rate} Hz, {len(wave)} samples")
    print(f"job {job_id}: succeeded on attempt {final['attempts']}, {len(wave) / rate:.1f} s audio from the bucket")


if __name__ == "__main__":
    submit() if sys.argv[1] == "submit" else finish(sys.argv[2])
