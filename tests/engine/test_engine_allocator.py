"""The malloc tuning applies on glibc and steps aside when the environment sets its own thresholds."""

from __future__ import annotations

import platform

import pytest

from f5vi.engine.allocator import tune_glibc_malloc


def test_thresholds_applied_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert tune_glibc_malloc() is (platform.libc_ver()[0] == "glibc")


def test_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1048576")
    assert tune_glibc_malloc() is False
