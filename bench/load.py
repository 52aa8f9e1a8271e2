"""f5vi load benchmark: ``python -m bench.load`` (``make bench-load BENCH_ARGS="..."``).

Starts the real server (``python -m f5vi serve``, or with ``--runpod`` the RunPod worker behind the
RunPod SDK's local API) on a random-weight checkpoint of the chosen size (``bench/checkpoints.py``),
fires ``N`` concurrent clients, each sending ``--requests`` requests one after the other from a fixed
Vietnamese schedule (``bench/load_clients.py``: short and medium texts, jobs and streams), and records
per run: throughput (seconds of audio delivered per wall second), p50/p95 request latency (request
start to the last audio byte received), first-audio latency of the streams, peak RSS of the server
process, peak VRAM (CUDA, from ``GET /status``) and errors. Every request must complete: any error
is counted, printed, and makes the command exit 1 (the JSON is still written; RESULTS.md is not).

Batching across requests is compared side by side in one run, per concurrency level:

* ``off``: ``F5VI_ENGINE_CONCURRENCY=1``: one request at a time (its own chunks share ODE batches
  within the device's default budget): the behaviour before cross-request batching;
* ``on``: ``F5VI_ENGINE_CONCURRENCY=N`` (the client count) and ``F5VI_MAX_BATCH_FRAMES=B`` for each
  ``B`` of ``--on-budgets`` (default 16384, the GPU default; on a CPU ``--on-budgets 16384,1`` also
  shows fair interleaving without padding, the CPU default).

The server is restarted for every run (every level and setting): each run's peak RSS and VRAM are
its own, and no cache, allocator pool or queue state of one setting carries into the next; the cost
is a model load and an untimed warm-up (one job and one stream at NFE 2) per run. The settings
alternate in ABBA order over the levels (``off, on`` at the first level, ``on, off`` at the next,
...) so slow drift of a shared machine does not favour one side.

The load generator runs on the same machine as the server (on a small CPU it takes some of the
cores' time: light, but not nothing); the markdown states the machine, cores and load averages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.checkpoints import OUT_DIR as CKPT_DIR
from bench.checkpoints import arch_for, checkpoint_info, ensure_checkpoint
from bench.load_clients import KINDS, MIX, Outcome, Planned, Target, assign, run_clients, schedule
from bench.load_server import RssSampler, ServerProcess, ServerSpec, VramPoller, rss_kib
from bench.run import append_markdown, cpu_model

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_MD = BENCH_DIR / "RESULTS.md"
RESULTS_DIR = BENCH_DIR / "out" / "results"
LOGS_DIR = BENCH_DIR / "out" / "logs"
DEFAULT_VOICES = "vi_north_male,vi_south_male,vi_central_male"


# ----------------------------------------------------------------------------------------------------------
# settings of one run


def settings_for(level: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The server settings compared at one concurrency level, in ABBA order over the levels."""
    out: list[dict[str, Any]] = []
    for mode in args.batching:
        if mode == "off":
            out.append({"batching": "off", "engine_concurrency": 1, "max_batch_frames": None})
        else:
            for budget in args.on_budgets:
                out.append({"batching": "on", "engine_concurrency": level, "max_batch_frames": budget})
    return out


def ordered_runs(args: argparse.Namespace) -> list[tuple[int, dict[str, Any]]]:
    runs = []
    for k, level in enumerate(args.concurrency):
        settings = settings_for(level, args)
        runs += [(level, s) for s in (settings if k % 2 == 0 else settings[::-1])]
    return runs


def run_label(run: dict[str, Any]) -> str:
    if run["batching"] == "off":
        return "off"
    return f"on (budget {run['max_batch_frames']})"


# ----------------------------------------------------------------------------------------------------------
# one run


def quantile(values: list[float], q: float) -> float | None:
    """Inclusive quantile (linear interpolation between the closest ranks); None without values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def warm_up(target: Target, voices: list[str], timeout: float) -> list[Outcome]:
    """One job and one stream at NFE 2, untimed: first-call costs are not part of any run."""
    warm = Target(target.app_url, 2, target.runpod_url)
    planned = schedule(2, voices, runpod=target.runpod_url is not None)
    outcomes, _ = asyncio.run(run_clients(warm, [planned], request_timeout=timeout))
    return outcomes


def summarize(outcomes: list[Outcome], wall: float) -> dict[str, Any]:
    done = [o for o in outcomes if o.ok]
    latencies = [o.latency_s for o in done if o.latency_s is not None]
    first = [o.first_audio_s for o in done if o.first_audio_s is not None]
    audio = sum(o.audio_s for o in done)
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in sorted({o.kind for o in outcomes}):
        mine = [o.latency_s for o in done if o.kind == kind and o.latency_s is not None]
        by_kind[kind] = {"requests": sum(o.kind == kind for o in outcomes), "p50_s": quantile(mine, 0.5)}
    return {
        "requests": len(outcomes),
        "completed": len(done),
        "errors": len(outcomes) - len(done),
        "error_messages": [f"request {o.index} ({o.kind}): {o.error}" for o in outcomes if not o.ok][:10],
        "wall_s": wall,
        "audio_s": audio,
        "throughput_audio_s_per_s": audio / wall if wall > 0 else None,
        "p50_s": quantile(latencies, 0.5),
        "p95_s": quantile(latencies, 0.95),
        "max_s": max(latencies) if latencies else None,
        "first_audio_p50_s": quantile(first, 0.5),
        "first_audio_p95_s": quantile(first, 0.95),
        "first_audio_requests": len(first),
        "by_kind": by_kind,
    }


def run_one(
    level: int, setting: dict[str, Any], args: argparse.Namespace, ckpt: Path, stamp: str
) -> dict[str, Any]:
    spec = ServerSpec(
        checkpoint=ckpt,
        device=args.device,
        dtype=args.dtype,
        nfe=args.nfe,
        normalizer=args.normalizer,
        engine_concurrency=setting["engine_concurrency"],
        max_batch_frames=setting["max_batch_frames"],
        runpod=args.runpod,
        threads=args.server_threads,
    )
    label = f"c{level}-{setting['batching']}" + (
        f"-mbf{setting['max_batch_frames']}" if setting["max_batch_frames"] else ""
    )
    log_path = args.logs_dir / f"load-{stamp}-{label}.log"
    planned: list[Planned] = schedule(level * args.requests, args.voices, runpod=args.runpod)
    load_start = os.getloadavg()[0]
    with ServerProcess(spec, log_path) as server:
        server.start(args.start_timeout)
        target = Target(server.app_url, args.nfe, server.runpod_url)
        warm = [] if args.no_warmup else warm_up(target, args.voices, args.request_timeout)
        rss_before = rss_kib(server.pid)[0]
        on_cuda = args.device.startswith("cuda")
        vram = VramPoller(f"{server.app_url}/status")
        with RssSampler(server.pid) as rss, vram if on_cuda else contextlib.nullcontext():
            outcomes, wall = asyncio.run(
                run_clients(target, assign(planned, level), request_timeout=args.request_timeout)
            )
        hwm = rss_kib(server.pid)[1]
        alive = server.alive()
        tail = "" if alive else server.log_tail()
        start_seconds = server.start_seconds
    row: dict[str, Any] = {
        "concurrency": level,
        **setting,
        "label": run_label(setting),
        **summarize(outcomes, wall),
        "peak_rss_mib": rss.peak_kib / 1024,
        "rss_before_mib": rss_before / 1024,
        "vmhwm_mib": hwm / 1024,
        "peak_vram_mib": vram.reserved_mib if on_cuda else None,
        "peak_vram_allocated_mib": vram.allocated_mib if on_cuda else None,
        "server_start_s": start_seconds,
        "warmup_errors": [o.error for o in warm if not o.ok],
        "server_alive_after": alive,
        "loadavg_start": round(load_start, 2),
        "loadavg_end": round(os.getloadavg()[0], 2),
        "log": _relative(log_path),
        "per_request": [
            {
                "index": o.index,
                "client": o.client,
                "kind": o.kind,
                "text": o.text_id,
                "voice": o.voice,
                "seed": o.seed,
                "latency_s": o.latency_s,
                "first_audio_s": o.first_audio_s,
                "audio_s": o.audio_s,
                "error": o.error,
                **o.detail,
            }
            for o in outcomes
        ],
    }
    if row["warmup_errors"]:
        row["errors"] += len(row["warmup_errors"])
        row["error_messages"] += [f"warm-up: {e}" for e in row["warmup_errors"]]
    if not alive:
        row["errors"] += 1
        row["error_messages"].append(f"the server died during the run:\n{tail}")
    return row


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------------------------------------
# report


def ratios(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per level and on-budget: on / off throughput and p50 latency."""
    out = []
    for on in (r for r in runs if r["batching"] == "on"):
        off = next(
            (r for r in runs if r["batching"] == "off" and r["concurrency"] == on["concurrency"]), None
        )
        if off is None or not off["throughput_audio_s_per_s"] or not on["throughput_audio_s_per_s"]:
            continue
        out.append(
            {
                "concurrency": on["concurrency"],
                "max_batch_frames": on["max_batch_frames"],
                "throughput_on_over_off": on["throughput_audio_s_per_s"] / off["throughput_audio_s_per_s"],
                "p50_on_over_off": (on["p50_s"] / off["p50_s"]) if on["p50_s"] and off["p50_s"] else None,
            }
        )
    return out


def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _row_order(run: dict[str, Any]) -> tuple[int, str, int]:
    return run["concurrency"], run["batching"], -(run["max_batch_frames"] or 0)


def markdown(report: dict[str, Any]) -> str:
    cfg, mach = report["config"], report["machine"]
    gpu = f", GPU {mach['gpu']}" if mach.get("gpu") else ""
    front = "RunPod worker (SDK local API)" if cfg["runpod"] else "HTTP server (`f5vi serve`)"
    lines = [
        f"### {report['date']} · load · {cfg['config']} ({cfg['arch_name']}) · NFE {cfg['nfe']} · "
        f"{cfg['dtype']} · {report['device']}",
        "",
        f"`python -m bench.load {' '.join(cfg['argv'])}`. {front}, restarted for every run. Machine: "
        f"{mach['cpu_model']}, {mach['cpu_count']} cores, {mach['mem_total_gib']} GiB{gpu}; torch "
        f"{mach['torch']}; server threads {cfg['server_threads'] or 'torch default'}; load average at start "
        f"{mach['loadavg_start'][0]}, at end {mach['loadavg_end'][0]} (a shared machine: other processes may "
        f"have run; the clients run on it too). {cfg['requests_per_client']} request(s) per client from the "
        f"fixed schedule ({cfg['schedule']}), voices {', '.join(cfg['voices'])}, normalizer "
        f"{cfg['normalizer']}, params {cfg['num_params']:,}. Throughput = seconds of audio received / "
        "wall seconds of the run; latency = request start (connect) to last audio byte; first audio: "
        "streams only; load avg: the machine's 1-minute load average when the run's server started and "
        "when its last request ended.",
        "",
    ]
    if report.get("note"):
        lines += [report["note"], ""]
    header = [
        "clients",
        "batching",
        "requests",
        "errors",
        "audio s",
        "wall s",
        "throughput audio s/s",
        "on / off",
        "p50 s",
        "p95 s",
        "first audio p50 s",
        "peak RSS MiB",
        "load avg start → end",
    ]
    vram = report["device"] == "cuda"
    if vram:
        header.append("peak VRAM MiB (reserved)")
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ratio_of = {(r["concurrency"], r["max_batch_frames"]): r for r in report["ratios"]}
    for run in sorted(report["runs"], key=_row_order):
        ratio = ratio_of.get((run["concurrency"], run["max_batch_frames"]))
        if run["batching"] != "on":
            ratio = None
        cells = [
            str(run["concurrency"]),
            run["label"],
            str(run["requests"]),
            f"**{run['errors']}**" if run["errors"] else "0",
            _f(run["audio_s"], 1),
            _f(run["wall_s"], 1),
            _f(run["throughput_audio_s_per_s"], 3),
            f"**{ratio['throughput_on_over_off']:.2f}×**" if ratio else "–",
            _f(run["p50_s"]),
            _f(run["p95_s"]),
            _f(run["first_audio_p50_s"]),
            f"{run['peak_rss_mib']:.0f}",
            f"{run['loadavg_start']} → {run['loadavg_end']}",
        ]
        if vram:
            cells.append(_f(run["peak_vram_mib"], 0))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Raw data: `{report['json_path']}` (not committed).", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# main


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=["tiny", "small", "base"], default="tiny")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--nfe", type=int, default=8, help="ODE steps of every request (service default 32)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"])
    p.add_argument(
        "--concurrency", type=_int_list, default=[1, 2, 4, 8, 16], help="client counts, e.g. 1,4,16"
    )
    p.add_argument("--requests", type=int, default=2, help="requests per client (one after the other)")
    p.add_argument(
        "--batching",
        type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
        default=["off", "on"],
        help="settings compared per level: off, on, or off,on (default)",
    )
    p.add_argument(
        "--on-budgets",
        type=_int_list,
        default=[16384],
        help="F5VI_MAX_BATCH_FRAMES of the 'on' runs (one run each), e.g. 16384,1",
    )
    p.add_argument("--runpod", action="store_true", help="load the RunPod worker (SDK local API) instead")
    p.add_argument("--voices", type=lambda s: s.split(","), default=DEFAULT_VOICES.split(","))
    p.add_argument("--normalizer", default="vinorm", choices=["vinorm", "hamster", "none"])
    p.add_argument("--server-threads", type=int, default=None, help="OMP/MKL threads of the server")
    p.add_argument("--request-timeout", type=float, default=900.0, help="seconds one request may take")
    p.add_argument("--start-timeout", type=float, default=300.0, help="seconds the server may take to start")
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up requests per run")
    p.add_argument("--ckpt-root", type=Path, default=CKPT_DIR)
    p.add_argument("--logs-dir", type=Path, default=LOGS_DIR)
    p.add_argument("--json-out", type=Path, default=None)
    p.add_argument("--results-md", type=Path, default=RESULTS_MD)
    p.add_argument("--no-md", action="store_true", help="do not append to the results Markdown")
    p.add_argument("--note", default="", help="free text added under the heading")
    args = p.parse_args(argv)
    unknown = [b for b in args.batching if b not in ("off", "on")]
    if unknown or not args.batching:
        p.error(f"--batching takes off and/or on, got {args.batching}")
    if not args.concurrency or min(args.concurrency) < 1 or args.requests < 1:
        p.error("--concurrency levels and --requests must be >= 1")
    args.argv = list(argv if argv is not None else sys.argv[1:])
    return args


def machine_info(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "mem_total_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    ckpt = ensure_checkpoint(args.config, root=args.ckpt_root)
    arch_name, _ = arch_for(args.config)
    mach = machine_info(args.device)
    now = dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    for level, setting in ordered_runs(args):
        print(f"[load] {level} client(s), batching {run_label(setting)}: starting the server ...", flush=True)
        row = run_one(level, setting, args, ckpt, stamp)
        runs.append(row)
        print(
            f"[load] {level:>2} client(s) {row['label']:<20} {row['requests']} requests, "
            f"{row['errors']} errors, {row['audio_s']:.1f} s audio in {row['wall_s']:.1f} s: "
            f"{_f(row['throughput_audio_s_per_s'], 3)} audio s/s, p50 {_f(row['p50_s'])} s, "
            f"p95 {_f(row['p95_s'])} s, first audio p50 {_f(row['first_audio_p50_s'])} s, "
            f"peak RSS {row['peak_rss_mib']:.0f} MiB (server start {row['server_start_s']:.1f} s)",
            flush=True,
        )
        for message in row["error_messages"]:
            print(f"[load] ERROR {message}", file=sys.stderr, flush=True)
    mach["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    info = checkpoint_info(ckpt)
    report: dict[str, Any] = {
        "runs": runs,
        "ratios": ratios(runs),
        "config": {
            "config": args.config,
            "arch_name": arch_name,
            "num_params": info["num_params"],
            "nfe": args.nfe,
            "dtype": args.dtype,
            "device": args.device,
            "runpod": args.runpod,
            "concurrency": args.concurrency,
            "requests_per_client": args.requests,
            "batching": args.batching,
            "on_budgets": args.on_budgets,
            "voices": args.voices,
            "normalizer": args.normalizer,
            "server_threads": args.server_threads,
            "schedule": ("RunPod jobs only" if args.runpod else f"front doors cycling {'/'.join(KINDS)}")
            + f", texts cycling {'/'.join(t for t, _ in MIX)}",
            "restart": "per run (every level and setting)",
            "argv": args.argv,
        },
        "device": args.device.split(":")[0],
        "machine": mach,
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "total_seconds": time.perf_counter() - started,
        "note": args.note,
    }
    json_path = args.json_out or RESULTS_DIR / f"{stamp}-load-{args.config}-nfe{args.nfe}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    report["json_path"] = _relative(json_path)
    json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    md = markdown(report)
    print(md)
    errors = sum(r["errors"] for r in runs)
    if errors:
        print(
            f"[load] FAILED: {errors} request(s) did not complete (see above and {report['json_path']}); "
            "RESULTS.md not updated",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(1)
    if not args.no_md:
        append_markdown(args.results_md, md)
    return report


if __name__ == "__main__":
    main()
    sys.exit(0)
