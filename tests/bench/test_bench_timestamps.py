"""A real, quick run of the timestamps cost benchmark (bench/timestamps.py) on the tiny config.

No timing is asserted (machines are busy): only that the report is complete and consistent.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import timestamps as bench_timestamps  # noqa: E402


def test_timestamps_benchmark_reports_its_share(tmp_path: Path) -> None:
    report = bench_timestamps.main(
        ["--config", "tiny", "--text", "sentence", "--nfe", "2", "--threads", "1", "--repeats", "2",
         "--ckpt-root", str(tmp_path)]
    )  # fmt: skip
    assert report["chunks"] >= 1 and report["words"] == len(bench_timestamps.TEXTS["sentence"].split())
    assert 0 < report["timestamps_in_job_seconds"] < report["job_total_seconds"]
    assert 0 <= report["share_in_job_percent"] < 100 and 0 <= report["share_alone_percent"] < 100
