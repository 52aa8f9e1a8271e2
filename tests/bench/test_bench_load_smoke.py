"""A real, quick run of the load benchmark (bench/load.py): tiny config, 1 and 2 clients, one request
each, batching across requests off and on, against real ``f5vi serve`` processes.

It checks the report's numbers against each other (throughput = audio / wall, p50 <= p95, streams
have a first-audio time, the same request gives the same audio with batching on and off) and that a
run whose requests fail is counted and makes the command fail. No figure here is a speed claim.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.load_clients import assign, schedule  # noqa: E402

from bench import load as bench_load  # noqa: E402

pytestmark = pytest.mark.slow

BASE_ARGS = ["--config", "tiny", "--nfe", "2", "--requests", "1", "--normalizer", "none"]
"""NFE 2, no text normaliser, one server thread, no warm-up: quick, and steady on a busy machine."""


@pytest.fixture(scope="module")
def ckpt_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ckpt")


def _args(tmp: Path, ckpt_root: Path, *extra: str) -> list[str]:
    return [
        *BASE_ARGS,
        "--server-threads", "1",
        "--no-warmup",
        "--ckpt-root", str(ckpt_root),
        "--logs-dir", str(tmp / "logs"),
        "--json-out", str(tmp / "load.json"),
        "--results-md", str(tmp / "RESULTS.md"),
        "--no-md",
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, ckpt_root: Path) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("load")
    result = bench_load.main(_args(tmp, ckpt_root, "--concurrency", "1,2", "--batching", "off,on"))
    result["_tmp"] = tmp
    result["_json"] = json.loads((tmp / "load.json").read_text(encoding="utf-8"))
    return result


def test_every_request_completes_and_the_figures_agree(report: dict[str, Any]) -> None:
    runs = report["runs"]
    # ABBA over the levels, and the settings each side stands for
    assert [(r["concurrency"], r["batching"]) for r in runs] == [(1, "off"), (1, "on"), (2, "on"), (2, "off")]
    for run in runs:
        assert run["errors"] == 0, run["error_messages"]
        assert run["requests"] == run["completed"] == run["concurrency"]
        assert run["engine_concurrency"] == (1 if run["batching"] == "off" else run["concurrency"])
        assert run["max_batch_frames"] == (None if run["batching"] == "off" else 16384)
        assert run["audio_s"] > 1.0 and run["wall_s"] > 0
        assert run["throughput_audio_s_per_s"] == pytest.approx(run["audio_s"] / run["wall_s"])
        assert 0 < run["p50_s"] <= run["p95_s"] <= run["max_s"] <= run["wall_s"] + 0.01
        assert run["peak_rss_mib"] > 100 and run["vmhwm_mib"] >= run["peak_rss_mib"] - 1
        assert run["peak_vram_mib"] is None  # CPU
        assert run["server_alive_after"]
        kinds = [r["kind"] for r in run["per_request"]]
        assert kinds == ["job", "ws"][: run["concurrency"]]
        if run["concurrency"] == 2:  # the WebSocket client measured its first audio
            assert 0 < run["first_audio_p50_s"] <= run["by_kind"]["ws"]["p50_s"]
        else:
            assert run["first_audio_p50_s"] is None
    assert {(r["concurrency"], r["max_batch_frames"]) for r in report["ratios"]} == {(1, 16384), (2, 16384)}


def test_the_same_request_gives_the_same_audio_with_batching_on_and_off(report: dict[str, Any]) -> None:
    durations: dict[tuple[int, int], set[float]] = {}
    for run in report["runs"]:
        for request in run["per_request"]:
            key = (run["concurrency"], request["index"])
            durations.setdefault(key, set()).add(round(request["audio_s"], 6))
    assert durations and all(len(d) == 1 for d in durations.values()), durations


def test_json_and_markdown(report: dict[str, Any]) -> None:
    saved = report["_json"]
    assert set(saved) >= {"runs", "ratios", "config", "device", "date", "machine"}
    keys = {"concurrency", "batching", "throughput_audio_s_per_s", "p50_s", "p95_s", "first_audio_p50_s"}
    keys |= {"requests", "errors", "peak_rss_mib", "peak_vram_mib"}
    assert all(keys <= set(run) for run in saved["runs"])
    assert saved["config"]["config"] == "tiny" and saved["device"] == "cpu"
    assert not (report["_tmp"] / "RESULTS.md").exists()  # --no-md
    md = bench_load.markdown(report)
    assert "| 2 | on (budget 16384) | 2 | 0 |" in md and "| 1 | off | 1 | 0 |" in md
    assert "2 cores" in md or f"{saved['machine']['cpu_count']} cores" in md


def test_failed_requests_are_counted_and_fail_the_command(tmp_path: Path, ckpt_root: Path) -> None:
    args = _args(tmp_path, ckpt_root, "--concurrency", "2", "--batching", "on", "--voices", "no_such_voice")
    with pytest.raises(SystemExit) as exited:
        bench_load.main(args)
    assert exited.value.code == 1
    saved = json.loads((tmp_path / "load.json").read_text(encoding="utf-8"))
    (run,) = saved["runs"]
    assert run["errors"] == 2 and run["completed"] == 0
    assert all("404" in message or "voice" in message for message in run["error_messages"])


def test_schedule_is_fixed_and_shared_by_every_level() -> None:
    planned = schedule(12, ["a", "b", "c"])
    assert [p.kind for p in planned[:4]] == ["job", "ws", "job", "speech"]
    assert [p.text_id for p in planned[:3]] == ["sentence", "sentence", "paragraph"]
    assert [p.seed for p in planned] == list(range(1000, 1012))
    assert schedule(4, ["a", "b", "c"]) == planned[:4]
    clients = assign(planned[:8], 4)
    assert [[p.index for p in c] for c in clients] == [[0, 4], [1, 5], [2, 6], [3, 7]]
    assert {p.kind for p in schedule(4, ["a"], runpod=True)} == {"runpod"}
    assert bench_load.quantile([1.0, 2.0, 3.0, 4.0], 0.5) == pytest.approx(2.5)
    assert bench_load.quantile([5.0], 0.95) == 5.0 and bench_load.quantile([], 0.5) is None
