"""bench/store.py's store-throughput loop runs on both backends and every job ends succeeded."""

from __future__ import annotations

from pathlib import Path

from bench.store import store_throughput


def test_store_throughput_on_sqlite_and_postgresql(tmp_path: Path, pg_url: str) -> None:
    assert store_throughput(str(tmp_path / "jobs.sqlite3"), 12, 1) > 0
    assert store_throughput(pg_url, 12, 2) > 0  # two instances claiming from one table
