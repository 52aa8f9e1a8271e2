"""First audio vs all audio of a stream of a one-chunk text, planned as one chunk or as two parts.

``python -m bench.one_chunk_stream`` (from the repository root; demo model, one torch thread, 32 ODE
steps, espeak-ng for the reference clip as in the tests). Prints the medians of three runs each.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

TEXT = "Xin chào các bạn, hôm nay trời đẹp quá và chúng ta cùng nhau đi dạo trong công viên."


def main(root: Path = Path("/tmp/f5vi-one-chunk-stream")) -> None:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from engine_helpers import demo_settings, speak
    from f5vi.engine.synthesizer import Synthesizer
    from f5vi.engine.types import ReferenceVoice, SynthesisRequest

    torch.set_num_threads(1)
    root.mkdir(parents=True, exist_ok=True)
    synth = Synthesizer.from_settings(demo_settings(root / "demo", nfe_step=32))
    clip = speak(root, "xin chào các bạn, hôm nay trời đẹp quá.")
    reference = ReferenceVoice(audio_path=clip.path, transcript=clip.transcript)
    planner_plan = synth.planner.plan
    print("load average", os.getloadavg())
    for short_first in (False, True):
        if not short_first:  # the plan before the change: one chunk
            synth.planner.plan = lambda request, short_first=False: planner_plan(request)  # type: ignore[method-assign]
        runs = []
        for seed in range(3):
            request = SynthesisRequest(text=TEXT, reference=reference, nfe_step=32, seed=seed)
            started = time.perf_counter()
            pieces = synth.stream(request)
            next(pieces)
            first = time.perf_counter() - started
            list(pieces)
            runs.append((first, time.perf_counter() - started))
        synth.planner.plan = planner_plan  # type: ignore[method-assign]
        label = "two parts" if short_first else "one chunk"
        first_s = statistics.median(r[0] for r in runs)
        all_s = statistics.median(r[1] for r in runs)
        print(f"{label}: first audio {first_s:.2f} s, all {all_s:.2f} s")
    print("load average", os.getloadavg())


if __name__ == "__main__":
    main()
