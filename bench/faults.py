"""Issue 25's figures, measured in one run against a real server (``python -m f5vi serve``).

1. Engine-turn calls (item 3): the latency of a short non-streamed ``POST /v1/audio/speech``
   alone, beside a long running job, and right after a ``POST /normalize`` whose voice has no
   transcript and whose client gave up (the transcription it queued used to wait for the running
   job to finish, and everything behind it with it).
2. Voice tags (item 4): ``POST /normalize`` of ``[vi_north_male] a.`` x 1000 against the same words
   without tags (every tagged part used to start its own vinorm process).

The server runs the demo model (random weights: the audio is noise, the timings are the engine's)
and a tiny PhoWhisper-architecture transcriber with random weights (``tests/tiny_whisper.py``): what
a real transcription costs is not measured here, only that it no longer waits for running work.

    python -m bench.faults [--out bench/out/faults.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
VOICE = "vi_north_male"
SHORT = "Xin chào các bạn."
LONG = " ".join(["Hôm nay trời đẹp, chúng ta cùng nhau đi dạo trong công viên gần nhà."] * 60)
REPEATS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare(root: Path) -> dict[str, str]:
    from f5vi.engine.demo import make_demo_model

    sys.path.insert(0, str(REPO / "tests"))
    from tiny_whisper import build_tiny_whisper  # random weights, PhoWhisper's layout

    model = make_demo_model(root / "model")
    whisper = build_tiny_whisper(root / "whisper")
    voices = root / "voices"
    voices.mkdir()
    for suffix in (".wav", ".txt"):
        shutil.copy(REPO / "voices" / f"{VOICE}{suffix}", voices / f"{VOICE}{suffix}")
    for n in range(REPEATS):  # one fresh untranscribed voice per try: a transcript is cached once made
        shutil.copy(REPO / "voices" / f"{VOICE}.wav", voices / f"untranscribed_{n}.wav")
    port = _free_port()
    return dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        F5VI_MODEL=str(model),
        F5VI_VOCODER=str(model / "vocos"),
        F5VI_DEVICE="cpu",
        F5VI_VOICES_DIR=str(voices),
        F5VI_DATA_DIR=str(root / "data"),
        F5VI_OUTPUT_DIR=str(root / "output"),
        F5VI_ASR_MODEL=str(whisper),
        F5VI_NFE_STEP="8",
        F5VI_NORMALIZER="vinorm",
        F5VI_HOST="127.0.0.1",
        F5VI_PORT=str(port),
        F5VI_LOG_LEVEL="WARNING",
    )


def _speech(client: httpx.Client) -> float:
    started = time.perf_counter()
    answer = client.post("/v1/audio/speech", json={"input": SHORT, "voice": VOICE, "response_format": "wav"})
    answer.raise_for_status()
    return time.perf_counter() - started


def _state(client: httpx.Client, job_id: str) -> str:
    return str(client.get(f"/tts/progress/{job_id}").json()["state"])


def measure(base_url: str) -> dict[str, Any]:
    client = httpx.Client(base_url=base_url, timeout=600)
    out: dict[str, Any] = {"load_average_start": os.getloadavg()}
    _speech(client)  # warm-up
    out["short_alone_s"] = [_speech(client) for _ in range(REPEATS)]

    job = client.post("/tts", json={"text": LONG, "ref_name": VOICE}).json()["job_id"]
    while client.get(f"/tts/progress/{job}").json()["stage"] != "synthesizing":
        time.sleep(0.05)
    out["short_beside_long_job_s"] = [_speech(client) for _ in range(REPEATS)]
    behind: list[float] = []
    for n in range(REPEATS):
        # a client that gives up: the transcription it asked for used to stay in the engine's queue
        with contextlib.suppress(httpx.TimeoutException):
            client.post("/normalize", json={"text": SHORT, "ref_name": f"untranscribed_{n}"}, timeout=0.3)
        behind.append(_speech(client))
    out["short_behind_abandoned_transcription_s"] = behind
    out["long_job_still_running_after"] = _state(client, job) == "running"
    client.post(f"/tts/kill/{job}")
    while _state(client, job) not in ("cancelled", "succeeded", "failed"):
        time.sleep(0.1)

    words = "a. " * 1000
    tagged = f"[{VOICE}] a. " * 1000
    for name, text in (("normalize_untagged_s", words), ("normalize_tagged_s", tagged)):
        started = time.perf_counter()
        answer = client.post("/normalize", json={"text": text, "ref_name": VOICE})
        answer.raise_for_status()
        out[name] = time.perf_counter() - started
        out[name.replace("_s", "_chars")] = len(text)
    out["load_average_end"] = os.getloadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="f5vi-bench-faults-") as tmp:
        env = _prepare(Path(tmp))
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed below
        server = subprocess.Popen([sys.executable, "-m", "f5vi", "serve"], env=env, stdout=log, stderr=log)
        base_url = f"http://127.0.0.1:{env['F5VI_PORT']}"
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    if httpx.get(f"{base_url}/health", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not become ready; see its log")
                time.sleep(0.5)
            result = measure(base_url)
        finally:
            server.terminate()
            server.wait(60)
            log.close()
    result["medians"] = {
        key: round(statistics.median(value), 3) for key, value in result.items() if key.startswith("short_")
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
