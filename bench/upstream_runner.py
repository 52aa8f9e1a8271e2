"""Runs upstream F5-TTS inference for the side-by-side benchmark. Executed INSIDE the upstream venv.

It imports nothing from f5vi: only upstream's own ``f5_tts`` code, torch, soundfile and ``bench/memory.py``.
The parent (``bench/run.py``) keeps it alive and sends one JSON command per line on stdin; each answer is
one JSON line on the original stdout. Everything upstream prints goes to stderr (the parent logs it to a
file).

Commands:

* ``{"cmd": "load", "ckpt", "vocab", "arch": {...DiT kwargs}, "vocoder_dir", "device", "threads"}``:
  upstream ``load_model(DiT, arch, ckpt, vocab_file=vocab)`` and ``load_vocoder("vocos", is_local=True,
  local_path=...)``.
* ``{"cmd": "run", "mode": "batch"|"first", "ref_wav", "ref_text", "chunks": [...], "nfe", "cfg", "sway",
  "speed", "seed"}``: ``mode="batch"`` times upstream's ``infer_batch_process`` exactly as ``infer_process``
  calls it (all chunks, non-streaming: one thread per chunk, batch size 1 each); ``mode="first"`` times its
  streaming path (``streaming=True``, chunks one after another) until the first audio piece comes out, then
  stops.
* ``{"cmd": "rss"}``, ``{"cmd": "quit"}``.

The reference is read with soundfile (``torchaudio.load`` needs torchcodec, which is not installed) and
passed as ``(tensor, sample_rate)``, which is what ``infer_process`` itself passes after loading the file.
``--check-imports`` only imports the chain and exits (used when the venv is created).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.memory import PeakRSS, cuda_memory, max_rss_bytes, rss_bytes

# Imported at module level by f5_tts.model (its trainer and dataset modules), used only for training.
TRAINING_ONLY_MODULES = ("wandb", "datasets")


def _stub_training_only_modules() -> list[str]:
    stubbed = []
    for name in TRAINING_ONLY_MODULES:
        if importlib.util.find_spec(name) is not None:
            continue
        module = types.ModuleType(name)
        module.__doc__ = (
            "f5vi benchmark stand-in: training-only import of upstream f5_tts, never used by inference"
        )
        # A spec but no distribution metadata: libraries that probe for it (accelerate) see it as absent.
        module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None)
        if name == "datasets":

            class Dataset:
                pass

            def load_from_disk(*args: Any, **kwargs: Any) -> Any:
                raise RuntimeError("datasets is not installed in the benchmark venv")

            module.Dataset = Dataset  # type: ignore[attr-defined]
            module.load_from_disk = load_from_disk  # type: ignore[attr-defined]
        sys.modules[name] = module
        stubbed.append(name)
    return stubbed


STUBBED = _stub_training_only_modules()

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from f5_tts.infer.utils_infer import infer_batch_process, load_model, load_vocoder  # noqa: E402
from f5_tts.model import DiT  # noqa: E402


class Runner:
    def __init__(self) -> None:
        self.model: Any = None
        self.vocoder: Any = None
        self.device = "cpu"
        self.frames: list[int] = []
        self._refs: dict[str, tuple[np.ndarray, int]] = {}

    def load(self, req: dict[str, Any]) -> dict[str, Any]:
        torch.set_num_threads(int(req["threads"]))
        self.device = req["device"]
        started = time.perf_counter()
        model = load_model(DiT, req["arch"], req["ckpt"], vocab_file=req["vocab"], device=self.device)
        self.vocoder = load_vocoder(
            vocoder_name="vocos", is_local=True, local_path=req["vocoder_dir"], device=self.device
        )
        original_sample = model.sample

        def recording_sample(*args: Any, **kwargs: Any) -> Any:
            out, trajectory = original_sample(*args, **kwargs)
            self.frames.append(int(out.shape[1]))
            return out, trajectory

        model.sample = recording_sample  # records the frames each ODE call generated (incl. reference)
        self.model = model
        dtype = next(model.parameters()).dtype
        return {
            "load_seconds": time.perf_counter() - started,
            "dtype": str(dtype).removeprefix("torch."),
            "num_params": sum(p.numel() for p in model.parameters()),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "stubbed_modules": STUBBED,
            "rss_bytes": rss_bytes(),
        }

    def run(self, req: dict[str, Any]) -> dict[str, Any]:
        self.frames = []
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        kwargs = dict(
            mel_spec_type="vocos",
            progress=None,
            target_rms=0.1,
            cross_fade_duration=float(req.get("cross_fade", 0.15)),
            nfe_step=int(req["nfe"]),
            cfg_strength=float(req["cfg"]),
            sway_sampling_coef=float(req["sway"]),
            speed=float(req["speed"]),
            device=self.device,
        )
        torch.manual_seed(int(req["seed"]))
        first_latency: float | None = None
        with PeakRSS() as mem:
            started = time.perf_counter()
            wave, sr = sf.read(req["ref_wav"], dtype="float32", always_2d=True)  # as infer_process loads it
            audio = torch.from_numpy(np.ascontiguousarray(wave.T))
            if req["mode"] == "batch":
                result = next(
                    infer_batch_process(
                        (audio, sr), req["ref_text"], req["chunks"], self.model, self.vocoder, **kwargs
                    )
                )
                final_wave = result[0]
                samples = len(final_wave)
            else:
                stream = infer_batch_process(
                    (audio, sr),
                    req["ref_text"],
                    req["chunks"],
                    self.model,
                    self.vocoder,
                    streaming=True,
                    **kwargs,
                )
                piece, _sr = next(stream)
                first_latency = time.perf_counter() - started
                stream.close()
                samples = len(piece)
            wall = time.perf_counter() - started
        out: dict[str, Any] = {
            "wall_seconds": wall,
            "audio_seconds": samples / 24_000 if req["mode"] == "batch" else None,
            "first_chunk_seconds": first_latency,
            "frames": self.frames,
            "peak_rss_bytes": mem.peak,
            "rss_before_bytes": mem.start,
            "rss_after_bytes": mem.end,
        }
        out.update(cuda_memory(torch, torch.device(self.device)))
        return out


def main() -> int:
    if "--check-imports" in sys.argv:
        print(f"upstream f5_tts imports OK (torch {torch.__version__}; stand-ins for {STUBBED})")
        return 0
    protocol = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # anything upstream prints (Python or C level) goes to stderr
    sys.stdout = sys.stderr
    runner = Runner()
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            cmd = req["cmd"]
            if cmd == "quit":
                protocol.write(json.dumps({"ok": True}) + "\n")
                break
            if cmd == "load":
                answer = runner.load(req)
            elif cmd == "run":
                answer = runner.run(req)
            elif cmd == "rss":
                answer = {"rss_bytes": rss_bytes(), "max_rss_bytes": max_rss_bytes()}
                answer.update(cuda_memory(torch, torch.device(runner.device)))
            else:
                raise ValueError(f"unknown command {cmd!r}")
            answer["ok"] = True
        except Exception as exc:  # report to the parent, keep serving
            import traceback

            traceback.print_exc()
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        protocol.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
