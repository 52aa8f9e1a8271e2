"""What timestamps cost: their share of a CPU job's wall time in ``estimated`` mode.

``python -m bench.timestamps --config small --text paragraph --nfe 8``: synthesises the text with a
random-weight checkpoint of the config (``bench/checkpoints.py``) and the ``vi_north_male`` voice, and
reports the job's ``timestamps_seconds`` against its ``total_seconds`` (both measured inside the same
``Synthesizer.synthesize`` call, so machine load weighs on both). Then it times the timestamps alone
``--repeats`` times on the same plan and chunk lengths (median), for a figure free of one-off noise.
Timestamps need no model in ``estimated`` mode; their cost grows with the audio's length (one RMS pass)
and the number of words, not with the model, so a bigger model makes the share smaller still.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.checkpoints import OUT_DIR, ensure_checkpoint
from bench.texts import TEXTS

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="small")
    parser.add_argument("--text", default="paragraph", choices=sorted(TEXTS))
    parser.add_argument("--nfe", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--ckpt-root", type=Path, default=OUT_DIR, help="where random checkpoints are made")
    args = parser.parse_args(argv)

    import torch

    from f5vi.config import Settings
    from f5vi.engine.synthesizer import Synthesizer
    from f5vi.engine.types import ReferenceVoice, SynthesisRequest

    torch.set_num_threads(args.threads)
    ckpt = ensure_checkpoint(args.config, root=args.ckpt_root)
    settings = Settings(model=str(ckpt), vocoder=str(ckpt / "vocos"), device="cpu", dtype="float32")
    synth = Synthesizer.from_settings(settings)
    voice_dir = REPO_ROOT / "voices"
    voice = ReferenceVoice(
        voice_dir / "vi_north_male.wav",
        (voice_dir / "vi_north_male.txt").read_text(encoding="utf-8").strip(),
        "vi_north_male",
    )
    text = TEXTS[args.text]
    request = SynthesisRequest(text=text, reference=voice, nfe_step=args.nfe, seed=1234, speed=0.9)
    load = os.getloadavg()
    result = synth.synthesize(request)
    assert result.timestamps is not None and result.timestamps.method == "estimated"
    total = result.timings["total_seconds"]
    in_job = result.timings["timestamps_seconds"]

    # the timestamps alone, again and again, on the same plan and chunk lengths
    plan = synth.plan(request)
    spans = [(c.start_sample, c.end_sample) for c in result.timestamps.chunks]
    waves = [np.asarray(result.audio[a:b]) for a, b in spans]
    alone = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        synth.timekeeper.timestamps(plan, waves, result.sample_rate, request.cross_fade_seconds)
        alone.append(time.perf_counter() - started)
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "config": args.config,
        "text": args.text,
        "nfe": args.nfe,
        "threads": args.threads,
        "load_average_at_start": [round(x, 2) for x in load],
        "audio_seconds": round(result.duration_seconds, 2),
        "chunks": len(result.chunks),
        "words": len(result.timestamps.words),
        "job_total_seconds": round(total, 3),
        "timestamps_in_job_seconds": round(in_job, 4),
        "share_in_job_percent": round(100 * in_job / total, 3),
        "timestamps_alone_median_seconds": round(statistics.median(alone), 4),
        "share_alone_percent": round(100 * statistics.median(alone) / total, 3),
    }
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
