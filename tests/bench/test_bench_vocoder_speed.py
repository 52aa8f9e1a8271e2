"""``bench.run --vocoder``: a real (tiny) run of the vocoder speed measurement and its RESULTS table."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import run as bench_run  # noqa: E402


def test_vocoder_speed_measures_both_and_writes_a_table(tmp_path: Path) -> None:
    md = tmp_path / "RESULTS.md"
    report = bench_run.main(
        [
            "--vocoder", "both",
            "--vocoder-config", "tiny",
            "--vocoder-seconds", "0.5",
            "--repeats", "1",
            "--threads", "1",
            "--results-md", str(md),
        ]
    )  # fmt: skip
    rows = {row["vocoder"]: row for row in report["rows"]}
    assert set(rows) == {"vocos", "bigvgan"}
    for row in rows.values():
        assert row["audio_seconds"] > 0.4 and row["wall_seconds"] > 0 and row["audio_per_wall_second"] > 0
    text = md.read_text(encoding="utf-8")
    assert "### Vocoder speed" in text and "load average at start" in text
    assert "| vocos | tiny |" in text and "| bigvgan | tiny |" in text
