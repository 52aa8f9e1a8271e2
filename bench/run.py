"""f5vi speed benchmark: ``python -m bench.run`` (``make bench BENCH_ARGS="..."``).

Synthesises fixed Vietnamese texts (``bench/texts.py``) with a random-weight checkpoint of the chosen size
and reports, per text: wall time, real-time factor (wall / seconds of audio produced), first-chunk latency
(time until ``Synthesizer.stream`` yields its first piece), peak RSS and, on CUDA, peak VRAM. Results go to
a JSON file (``bench/out/results/``) and a Markdown table appended to ``bench/RESULTS.md``.

``--side-by-side`` also runs upstream F5-TTS (PyPI ``f5-tts``, in its own venv, see
``bench/upstream_env.py``) on the same checkpoint file, reference audio (f5vi's prepared reference, written
to a WAV file), reference text, text chunks, NFE, CFG strength, sway coefficient, speed and seed. Runs
alternate f5vi / upstream in ABBA order (repeat 0: f5vi then upstream, repeat 1: upstream then f5vi, ...) so
slow drift of the machine cancels out, and the ratio upstream wall / f5vi wall is reported per text. Each
side runs in its own process, so its RSS is its own.

``--soak N`` runs N consecutive jobs after the timed runs and records RSS (and VRAM) before and after, to
show that memory stays flat.

Defaults are chosen so that a plain ``make bench`` finishes in a few minutes on a 2-core CPU: the small
config, NFE 8, the sentence and paragraph texts, one repeat, no upstream. The three-minute text (``--texts
all`` or ``--texts long``), NFE 32 and the base config are opt-in; see ``bench/RESULTS.md`` for how long
they take.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import soundfile as sf
import torch

from bench.checkpoints import OUT_DIR as CKPT_DIR
from bench.checkpoints import arch_for, checkpoint_info, ensure_checkpoint, upstream_arch_kwargs
from bench.memory import PeakRSS, cuda_memory, max_rss_bytes, rss_bytes
from bench.texts import DESCRIPTIONS, TEXTS

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_MD = BENCH_DIR / "RESULTS.md"
RESULTS_DIR = BENCH_DIR / "out" / "results"
VOICES_DIR = REPO_ROOT / "voices"
MIB = 1024 * 1024


# ----------------------------------------------------------------------------------------------------------
# machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "mem_total_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def wait_until_quiet(max_wait: float, threshold: float) -> float:
    """Wait (up to ``max_wait`` s) until the 1-minute load average is below ``threshold``; returns it."""
    deadline = time.monotonic() + max_wait
    while True:
        load = os.getloadavg()[0]
        if load < threshold or time.monotonic() >= deadline:
            return load
        print(f"[bench] load average {load:.2f} >= {threshold}: waiting for a quiet machine ...", flush=True)
        time.sleep(15)


# ----------------------------------------------------------------------------------------------------------
# upstream process


class UpstreamProcess:
    """The upstream runner (``bench/upstream_runner.py``) in the upstream venv, spoken to over JSON lines."""

    def __init__(self, python: Path, log_path: Path) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
        env = dict(os.environ, TQDM_DISABLE="1", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [str(python), str(BENCH_DIR / "upstream_runner.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=REPO_ROOT,
            env=env,
        )

    def call(self, **request: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"upstream runner exited (code {self.proc.poll()}); see {self.log_path}")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise RuntimeError(f"upstream runner failed: {answer.get('error')} (log: {self.log_path})")
        return answer

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.call(cmd="quit")
                self.proc.wait(timeout=30)
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        finally:
            self._log.close()


# ----------------------------------------------------------------------------------------------------------
# f5vi side


@dataclass
class TextPlan:
    """What upstream needs to do the same work as f5vi did: its chunks and reference text."""

    chunks: list[str]
    reference_text: str


@dataclass
class Harness:
    args: argparse.Namespace
    synth: Any
    voice: Any
    device: torch.device
    upstream: UpstreamProcess | None = None
    ref_wav: Path | None = None
    plans: dict[str, TextPlan] = field(default_factory=dict)

    def request(
        self, text: str, *, nfe: int | None = None, seed: int | None = None, voice: Any = None
    ) -> Any:
        from f5vi.engine.types import SynthesisRequest

        return SynthesisRequest(
            text=text,
            reference=voice or self.voice,
            speed=self.args.speed,
            nfe_step=nfe or self.args.nfe,
            cfg_strength=self.args.cfg,
            sway_sampling_coef=self.args.sway,
            seed=self.args.seed if seed is None else seed,
        )

    def _cuda_reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def run_f5vi(
        self, text_id: str, text: str, *, nfe: int | None = None, max_batch_frames: int | None = None
    ) -> dict[str, Any]:
        """One timed ``synthesize`` (+ first-chunk ``stream``); ``max_batch_frames`` overrides the
        service setting for this run only (the batching A/B)."""
        saved = self.synth.max_batch_frames
        if max_batch_frames is not None:
            self.synth.max_batch_frames = max_batch_frames
        try:
            return self._run_f5vi(text_id, text, nfe=nfe)
        finally:
            self.synth.max_batch_frames = saved

    def _run_f5vi(self, text_id: str, text: str, *, nfe: int | None) -> dict[str, Any]:
        gc.collect()
        self._cuda_reset()
        request = self.request(text, nfe=nfe)
        with PeakRSS() as mem:
            started = time.perf_counter()
            result = self.synth.synthesize(request)
            wall = time.perf_counter() - started
        out: dict[str, Any] = {
            "wall_seconds": wall,
            "audio_seconds": result.duration_seconds,
            "rtf": wall / result.duration_seconds,
            "chunks": len(result.chunks),
            "peak_rss_bytes": mem.peak,
            "rss_before_bytes": mem.start,
            "rss_after_bytes": mem.end,
            "timings": result.timings,
        }
        out.update(cuda_memory(torch, self.device))
        if text_id not in self.plans:
            from f5vi.engine.text.normalizer import prepare_ref_text

            # upstream appends the extra trailing space itself (infer_batch_process): give it the
            # transcript as its preprocess_ref_audio_text leaves it ("… nhẹ. "), not f5vi's model string
            self.plans[text_id] = TextPlan(list(result.chunks), prepare_ref_text(result.reference_text))
        if not self.args.no_first_chunk:
            started = time.perf_counter()
            stream = self.synth.stream(request)
            try:
                first = next(stream)
            finally:
                stream.close()
            out["first_chunk_seconds"] = time.perf_counter() - started
            out["first_chunk_audio_seconds"] = len(first) / 24_000
        return out

    def run_upstream(self, text_id: str, *, nfe: int | None = None, mode: str = "batch") -> dict[str, Any]:
        assert self.upstream is not None and self.ref_wav is not None
        plan = self.plans[text_id]
        return self.upstream.call(
            cmd="run",
            mode=mode,
            ref_wav=str(self.ref_wav),
            ref_text=plan.reference_text,
            chunks=plan.chunks,
            nfe=nfe or self.args.nfe,
            cfg=self.args.cfg,
            sway=self.args.sway,
            speed=self.args.speed,
            seed=self.args.seed,
            cross_fade=0.15,
        )

    def run_upstream_full(self, text_id: str) -> dict[str, Any]:
        out = self.run_upstream(text_id, mode="batch")
        out["rtf"] = out["wall_seconds"] / out["audio_seconds"]
        if not self.args.no_first_chunk:
            first = self.run_upstream(text_id, mode="first")
            out["first_chunk_seconds"] = first["first_chunk_seconds"]
            out["peak_rss_bytes"] = max(out["peak_rss_bytes"], first["peak_rss_bytes"])
        return out


def load_synthesizer(args: argparse.Namespace, ckpt: Path) -> tuple[Any, float]:
    from f5vi.config import Settings
    from f5vi.engine.synthesizer import Synthesizer

    fields: dict[str, Any] = dict(
        model=str(ckpt),
        vocoder=str(ckpt / "vocos"),
        device=args.device,
        dtype=args.dtype,
        normalizer=args.normalizer,
    )
    if args.max_batch_frames:
        fields["max_batch_frames"] = args.max_batch_frames
    settings = Settings(**fields)
    started = time.perf_counter()
    synth = Synthesizer.from_settings(settings)
    return synth, time.perf_counter() - started


def write_reference_for_upstream(harness: Harness, out_dir: Path) -> Path:
    """f5vi's prepared reference (clipped, trimmed, RMS-normalised) as a float WAV for upstream to load."""
    from f5vi.engine.audio import prepare_reference_file

    settings = harness.synth.settings
    prepared = prepare_reference_file(
        harness.voice.audio_path,
        max_seconds=settings.max_reference_seconds,
        target_rms=settings.target_rms,
    )
    expected = harness.synth.references.get(harness.voice.audio_path).num_samples
    if prepared.wave_24k.shape[0] != expected:
        raise RuntimeError(
            f"prepared reference has {prepared.wave_24k.shape[0]} samples, the engine {expected}"
        )
    path = out_dir / f"ref-{harness.voice.voice_id}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, prepared.wave_24k, 24_000, subtype="FLOAT")
    return path


# ----------------------------------------------------------------------------------------------------------
# soak


def soak(harness: Harness, jobs: int, nfe: int, text: str) -> dict[str, Any]:
    """``jobs`` consecutive synthesis jobs; RSS/VRAM before, after each job, and after."""
    from f5vi.engine.types import ReferenceVoice

    voices = []
    for wav in sorted(VOICES_DIR.glob("*.wav")):
        transcript = wav.with_suffix(".txt")
        if transcript.is_file():
            voices.append(ReferenceVoice(wav, transcript.read_text(encoding="utf-8").strip(), wav.stem))
    voices = voices or [harness.voice]
    # one untimed job per voice first: caches (references, allocator pools) reach their steady state
    for voice in voices:
        harness.synth.synthesize(harness.request(text, nfe=nfe, voice=voice))
    gc.collect()
    before = {"rss_bytes": rss_bytes(), **cuda_memory(torch, harness.device)}
    per_job: list[dict[str, Any]] = []
    started = time.perf_counter()
    for job in range(jobs):
        voice = voices[job % len(voices)]
        result = harness.synth.synthesize(harness.request(text, nfe=nfe, seed=job, voice=voice))
        per_job.append(
            {
                "rss_bytes": rss_bytes(),
                "audio_seconds": result.duration_seconds,
                **cuda_memory(torch, harness.device),
            }
        )
    elapsed = time.perf_counter() - started
    gc.collect()
    after = {"rss_bytes": rss_bytes(), **cuda_memory(torch, harness.device)}
    rss = [j["rss_bytes"] for j in per_job]
    tail = rss[max(len(rss) // 5, 1) - 1 :]  # from the end of the first fifth on
    slope = _slope(tail) if len(tail) >= 2 else 0.0
    out: dict[str, Any] = {
        "jobs": jobs,
        "nfe": nfe,
        "text": text,
        "voices": [v.voice_id for v in voices],
        "seconds": elapsed,
        "before": before,
        "after": after,
        "rss_min_bytes": min(rss),
        "rss_max_bytes": max(rss),
        "rss_growth_bytes": after["rss_bytes"] - before["rss_bytes"],
        "rss_slope_bytes_per_job": slope,
        "per_job": per_job,
        "engine_memory_stats": harness.synth.memory_stats(),
    }
    if harness.device.type == "cuda":
        out["vram_growth_bytes"] = after["vram_allocated_bytes"] - before["vram_allocated_bytes"]
        out["vram_reserved_growth_bytes"] = after["vram_reserved_bytes"] - before["vram_reserved_bytes"]
    return out


def _slope(values: list[int]) -> float:
    n = len(values)
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


# ----------------------------------------------------------------------------------------------------------
# reporting


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def summarize(per_text: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for text_id, sides in per_text.items():
        row: dict[str, Any] = {}
        for side, runs in sides.items():
            if not runs:
                continue
            row[side] = {
                "runs": len(runs),
                "wall_seconds": _median(runs, "wall_seconds"),
                "wall_seconds_min": min(r["wall_seconds"] for r in runs),
                "audio_seconds": _median(runs, "audio_seconds"),
                "rtf": _median(runs, "rtf"),
                "first_chunk_seconds": _median(runs, "first_chunk_seconds"),
                "peak_rss_bytes": max(r["peak_rss_bytes"] for r in runs),
                "vram_peak_allocated_bytes": max(
                    (r.get("vram_peak_allocated_bytes", 0) for r in runs), default=0
                ),
                "vram_peak_reserved_bytes": max(
                    (r.get("vram_peak_reserved_bytes", 0) for r in runs), default=0
                ),
            }
        if "f5vi" in row and "upstream" in row:
            for side in [k for k in row if k.startswith("f5vi")]:
                row[f"ratio_upstream_over_{side}"] = (
                    row["upstream"]["wall_seconds"] / row[side]["wall_seconds"]
                )
            a, b = row["f5vi"]["audio_seconds"], row["upstream"]["audio_seconds"]
            row["audio_seconds_mismatch"] = abs(a - b) / max(a, b)
        summary[text_id] = row
    return summary


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _mib(value: float | None) -> str:
    return "–" if not value else f"{value / MIB:.0f}"


def markdown(report: dict[str, Any]) -> str:
    cfg, mach = report["config"], report["machine"]
    gpu = f", GPU {mach['gpu']}" if mach.get("gpu") else ""
    title = f"{cfg['config']} ({cfg['arch_name']}) · NFE {cfg['nfe']} · {cfg['dtype']} · {cfg['device']}"
    lines = [
        f"### {mach['date_utc']} · {title}",
        "",
        f"Machine: {mach['cpu_model']}, {mach['cpu_count']} cores, {mach['mem_total_gib']} GiB{gpu}; "
        f"torch {mach['torch']}, {mach['torch_threads']} threads; load average at start "
        f"{mach['loadavg_start'][0]}, at end {mach['loadavg_end'][0]}. Voice `{cfg['voice']}`, "
        f"speed {cfg['speed']}, cfg {cfg['cfg']}, sway {cfg['sway']}, seed {cfg['seed']}, "
        f"normalizer {cfg['normalizer']}, {cfg['repeats']} timed run(s) per text and side (median shown), "
        f"params {cfg['num_params']:,}.",
        "",
    ]
    upstream_dtype = cfg.get("upstream_dtype")
    if upstream_dtype and upstream_dtype != cfg["dtype"]:
        lines += [
            f"**Precision differs:** f5vi's backbone ran in {cfg['dtype']}, upstream's in {upstream_dtype} "
            "(its `load_model` picks the dtype from the device; it cannot run half precision on a CPU), so "
            "the speed-up column compares the same request at different precision, not identical work.",
            "",
        ]
    if report.get("note"):
        lines += [report["note"], ""]
    side_by_side = any("upstream" in row for row in report["summary"].values())
    vram = report["device"] == "cuda"
    header = [
        "text",
        "audio s",
        "chunks",
        "f5vi wall s",
        "f5vi RTF",
        "f5vi first chunk s",
        "f5vi peak RSS MiB",
    ]
    if vram:
        header += ["f5vi peak VRAM MiB (alloc / reserved)"]
    if side_by_side:
        header += ["upstream wall s", "upstream RTF", "upstream first chunk s", "upstream peak RSS MiB"]
        if vram:
            header += ["upstream peak VRAM MiB"]
        header += ["speed-up (upstream / f5vi wall)"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for text_id, row, side in [
        (t, r, k)
        for t, r in report["summary"].items()
        for k in r
        if k.startswith("f5vi") and "ratio" not in k
    ]:
        f = row[side]
        chunks = report["per_text"][text_id][side][0]["chunks"]
        label = (
            text_id if side == "f5vi" else f"{text_id} (f5vi with max_batch_frames {side.split('mbf')[1]})"
        )
        cells = [
            label,
            _fmt(f.get("audio_seconds"), 1),
            str(chunks),
            _fmt(f.get("wall_seconds")),
            _fmt(f.get("rtf"), 3),
            _fmt(f.get("first_chunk_seconds")),
            _mib(f.get("peak_rss_bytes")),
        ]
        if vram:
            cells.append(
                f"{_mib(f.get('vram_peak_allocated_bytes'))} / {_mib(f.get('vram_peak_reserved_bytes'))}"
            )
        if side_by_side:
            u = row.get("upstream", {})
            cells += [
                _fmt(u.get("wall_seconds")),
                _fmt(u.get("rtf"), 3),
                _fmt(u.get("first_chunk_seconds")),
                _mib(u.get("peak_rss_bytes")),
            ]
            if vram:
                cells.append(_mib(u.get("vram_peak_reserved_bytes")))
            ratio = row.get(f"ratio_upstream_over_{side}")
            cells.append("–" if ratio is None else f"**{ratio:.2f}×**")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    load = report.get("load_seconds", {})
    if load:
        lines += [
            "Model + vocoder load: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in load.items())
            + ". Baseline RSS after "
            "load: "
            + ", ".join(f"{k} {v / MIB:.0f} MiB" for k, v in report.get("rss_after_load", {}).items())
            + ".",
            "",
        ]
    s = report.get("soak")
    if s:
        lines += [soak_markdown(s), ""]
    lines.append(f"Raw data: `{report['json_path']}` (not committed).")
    lines.append("")
    return "\n".join(lines)


def soak_markdown(s: dict[str, Any]) -> str:
    before, after = s["before"], s["after"]
    first = max(len(s["per_job"]) // 5, 1)
    text = (
        f"Memory over {s['jobs']} consecutive jobs (text `{s['text'][:40]}…`, NFE {s['nfe']}, voices cycled: "
        f"{', '.join(s['voices'])}; {s['seconds']:.0f} s): RSS before {before['rss_bytes'] / MIB:.1f} MiB, "
        f"after {after['rss_bytes'] / MIB:.1f} MiB (growth {s['rss_growth_bytes'] / MIB:+.1f} MiB), "
        f"min/max during {s['rss_min_bytes'] / MIB:.1f} / {s['rss_max_bytes'] / MIB:.1f} MiB, "
        f"trend over jobs {first}–{s['jobs']} "
        f"{s['rss_slope_bytes_per_job'] / 1024:+.1f} KiB/job; RSS after job {first} "
        f"{s['per_job'][first - 1]['rss_bytes'] / MIB:.1f} MiB, after job {s['jobs']} "
        f"{s['per_job'][-1]['rss_bytes'] / MIB:.1f} MiB."
    )
    if "vram_allocated_bytes" not in before:
        return text + " (CPU run: no VRAM.)"
    return text + (
        f" VRAM allocated before {before['vram_allocated_bytes'] / MIB:.1f} MiB, after "
        f"{after['vram_allocated_bytes'] / MIB:.1f} MiB; reserved before "
        f"{before['vram_reserved_bytes'] / MIB:.1f} MiB, after {after['vram_reserved_bytes'] / MIB:.1f} MiB."
    )


def append_markdown(path: Path, text: str) -> None:
    if not path.exists():
        path.write_text("# Benchmark results\n\n", encoding="utf-8")
    with open(path, "a", encoding="utf-8") as f:
        f.write(text + "\n")


# ----------------------------------------------------------------------------------------------------------
# main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=["tiny", "small", "base"], default="small")
    p.add_argument("--nfe", type=int, default=8, help="ODE steps (service default 32)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"])
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--texts",
        default="sentence,paragraph",
        help="comma list of sentence, paragraph, long (~3 min of speech), or 'all'",
    )
    p.add_argument("--text", default=None, help="benchmark this text instead (id 'custom')")
    p.add_argument("--repeats", type=int, default=1, help="timed runs per text and side")
    p.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads (both sides)"
    )
    p.add_argument("--side-by-side", action="store_true", help="also run upstream f5-tts on the same work")
    p.add_argument(
        "--soak", type=int, default=0, metavar="N", help="then run N consecutive jobs, record memory"
    )
    p.add_argument("--soak-nfe", type=int, default=None, help="NFE for the soak jobs (default: --nfe)")
    p.add_argument("--soak-text", default="sentence", help="text id (or literal text) of the soak jobs")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--voice", default="vi_north_male", help="reference voice in voices/ (wav + txt)")
    p.add_argument("--speed", type=float, default=0.9)
    p.add_argument("--cfg", type=float, default=2.0)
    p.add_argument("--sway", type=float, default=-1.0)
    p.add_argument("--normalizer", default="vinorm", choices=["vinorm", "hamster", "none"])
    p.add_argument("--max-batch-frames", type=int, default=None)
    p.add_argument(
        "--also-max-batch-frames",
        type=int,
        default=None,
        metavar="N",
        help="also time f5vi with max_batch_frames=N (1: one chunk per ODE batch), alternating",
    )
    p.add_argument("--no-first-chunk", action="store_true", help="skip the first-chunk latency runs")
    p.add_argument("--no-warmup", action="store_true")
    p.add_argument(
        "--wait-quiet", type=float, default=0.0, metavar="S", help="wait up to S s for load avg < 0.5"
    )
    p.add_argument("--ckpt-root", type=Path, default=CKPT_DIR)
    p.add_argument("--json-out", type=Path, default=None)
    p.add_argument("--results-md", type=Path, default=RESULTS_MD)
    p.add_argument("--no-md", action="store_true", help="do not append to the results Markdown")
    p.add_argument("--note", default="", help="free text added under the table")
    p.add_argument(
        "--vocoder",
        choices=["vocos", "bigvgan", "both"],
        default=None,
        help="only time the vocoder(s): seconds of audio per wall second (bench/vocoder_speed.py)",
    )
    p.add_argument("--vocoder-config", choices=["published", "tiny"], default="published")
    p.add_argument("--vocoder-seconds", type=float, default=10.0, help="audio per timed vocoder call")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.vocoder is not None:
        from bench.vocoder_speed import run as run_vocoder_speed

        return run_vocoder_speed(args)
    if args.text:
        texts = {"custom": args.text}
    else:
        names = (
            list(TEXTS) if args.texts == "all" else [t.strip() for t in args.texts.split(",") if t.strip()]
        )
        unknown = [n for n in names if n not in TEXTS]
        if unknown:
            raise SystemExit(f"unknown text(s) {unknown}; choose from {', '.join(TEXTS)} or 'all'")
        texts = {n: TEXTS[n] for n in names}
    if args.wait_quiet > 0:
        wait_until_quiet(args.wait_quiet, 0.5)

    from f5vi.engine.types import ReferenceVoice

    ckpt = ensure_checkpoint(args.config, root=args.ckpt_root)
    arch_name, arch = arch_for(args.config)
    synth, f5vi_load = load_synthesizer(args, ckpt)
    device = synth.device
    mach = machine_info(device)
    voice_wav = VOICES_DIR / f"{args.voice}.wav"
    voice = ReferenceVoice(
        voice_wav, voice_wav.with_suffix(".txt").read_text(encoding="utf-8").strip(), args.voice
    )
    harness = Harness(args=args, synth=synth, voice=voice, device=device)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = BENCH_DIR / "out"
    load_seconds = {"f5vi": f5vi_load}
    rss_after_load = {"f5vi": rss_bytes()}

    upstream_dtype = None
    if args.side_by_side:
        from bench.upstream_env import ensure_upstream_env

        python = ensure_upstream_env(quiet=True)
        harness.upstream = UpstreamProcess(python, out_dir / "logs" / f"upstream-{stamp}.log")
        loaded = harness.upstream.call(
            cmd="load",
            ckpt=str(ckpt / "model_last.pt"),
            vocab=str(ckpt / "vocab.txt"),
            arch=upstream_arch_kwargs(arch),
            vocoder_dir=str(ckpt / "vocos"),
            device=str(device),
            threads=args.threads,
        )
        load_seconds["upstream"] = loaded["load_seconds"]
        upstream_dtype = loaded["dtype"]
        rss_after_load["upstream"] = loaded["rss_bytes"]
        harness.ref_wav = write_reference_for_upstream(harness, out_dir / "ref")

    try:
        if not args.no_warmup:  # untimed: first-call costs (allocator, caches, lazy imports) on both sides
            warm_text = next(iter(texts.values()))
            harness.run_f5vi("_warmup", warm_text, nfe=2)
            if harness.upstream is not None:
                harness.run_upstream("_warmup", nfe=2)
        per_text: dict[str, dict[str, list[dict[str, Any]]]] = {}
        sides = ["f5vi"]
        if args.also_max_batch_frames is not None:
            sides.append(f"f5vi_mbf{args.also_max_batch_frames}")
        if harness.upstream is not None:
            sides.append("upstream")
        for text_id, text in texts.items():
            runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
            for rep in range(args.repeats):
                # ABBA: forward order on even repeats, reversed on odd ones; f5vi runs first on repeat 0
                # because upstream is given f5vi's chunks
                order = sides if rep % 2 == 0 else sides[::-1]
                for side in order:
                    if side == "f5vi":
                        run = harness.run_f5vi(text_id, text)
                    elif side.startswith("f5vi_mbf"):
                        run = harness.run_f5vi(text_id, text, max_batch_frames=args.also_max_batch_frames)
                    else:
                        run = harness.run_upstream_full(text_id)
                    runs[side].append(run)
                    print(
                        f"[bench] {text_id:<9} {side:<10} rep {rep}: wall {run['wall_seconds']:.2f} s, "
                        f"audio {run['audio_seconds']:.1f} s, RTF {run['rtf']:.3f}, first chunk "
                        f"{_fmt(run.get('first_chunk_seconds'))} s, "
                        f"peak RSS {run['peak_rss_bytes'] / MIB:.0f} MiB",
                        flush=True,
                    )
            per_text[text_id] = runs
        soak_report = None
        if args.soak:
            soak_text = TEXTS.get(args.soak_text, args.soak_text)
            soak_report = soak(harness, args.soak, args.soak_nfe or args.nfe, soak_text)
            print(
                f"[bench] soak {args.soak} jobs: RSS {soak_report['before']['rss_bytes'] / MIB:.1f} -> "
                f"{soak_report['after']['rss_bytes'] / MIB:.1f} MiB",
                flush=True,
            )
    finally:
        if harness.upstream is not None:
            harness.upstream.close()

    mach["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    info = checkpoint_info(ckpt)
    report: dict[str, Any] = {
        "config": {
            "config": args.config,
            "arch_name": arch_name,
            "num_params": info["num_params"],
            "nfe": args.nfe,
            "dtype": str(synth.dtype).removeprefix("torch."),
            "upstream_dtype": upstream_dtype,
            "device": str(device),
            "threads": args.threads,
            "voice": args.voice,
            "speed": args.speed,
            "cfg": args.cfg,
            "sway": args.sway,
            "seed": args.seed,
            "normalizer": args.normalizer,
            "repeats": args.repeats,
            "max_batch_frames": synth.max_batch_frames,
            "texts": {k: DESCRIPTIONS.get(k, "custom") for k in texts},
        },
        "device": device.type,
        "machine": mach,
        "load_seconds": load_seconds,
        "rss_after_load": rss_after_load,
        "max_rss_bytes_process": max_rss_bytes(),
        "per_text": per_text,
        "summary": summarize(per_text),
        "soak": soak_report,
        "note": args.note,
    }
    json_path = args.json_out or RESULTS_DIR / f"{stamp}-{args.config}-nfe{args.nfe}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        report["json_path"] = str(json_path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        report["json_path"] = str(json_path)
    json_path.write_text(json.dumps(report, indent=1), encoding="utf-8")
    md = markdown(report)
    print(md)
    if not args.no_md:
        append_markdown(args.results_md, md)
    return report


if __name__ == "__main__":
    main()
    sys.exit(0)
