"""Shared test fixtures. Tests never touch the network: the hub is forced offline here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from f5vi.engine.synthesizer import Synthesizer

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def golden_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Upstream F5-TTS reference data, rebuilt byte for byte from ``tests/golden/`` (its README gives
    provenance and tolerances); a temporary copy, so tests may not alter the committed files."""
    from golden_data import materialize

    return materialize(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="module")
def demo_synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesizer]:
    """The real engine on the demo model, one torch thread (2 shared cores: more threads oversubscribe)."""
    import torch

    from f5vi.config import Settings
    from f5vi.engine.synthesizer import Synthesizer
    from server_helpers import demo_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = demo_model(tmp_path_factory.getbasetemp())
    settings = Settings(model=str(model), vocoder=str(model / "vocos"), device="cpu", normalizer="none")
    try:
        yield Synthesizer.from_settings(settings)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    """One real PostgreSQL server for the session (tests/pg_server.py); installed by ``make sysdeps``."""
    from pg_server import PostgresServer, postgres_bin

    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL is not installed: run `make sysdeps` (Debian package `postgresql`)")
    server = PostgresServer(bin_dir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: object) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL server."""
    return pg_server.new_database()  # type: ignore[attr-defined]
