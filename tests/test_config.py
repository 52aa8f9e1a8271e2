"""Settings that decide where files go and what happens when the model cannot be loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from f5vi.config import Settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("F5VI_DATA_DIR", "F5VI_DEMO_MODEL_DIR", "F5VI_DEMO_FALLBACK"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_demo_model_goes_under_the_data_dir_never_the_current_directory(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("F5VI_DATA_DIR", str(tmp_path / "state"))
    assert Settings().demo_model_path == tmp_path / "state" / "models" / "demo"
    assert Settings(data_dir=tmp_path / "other").demo_model_path == tmp_path / "other" / "models" / "demo"
    clean_env.delenv("F5VI_DATA_DIR")
    assert Settings().demo_model_path == Path("data") / "models" / "demo"  # the default data dir


def test_demo_model_dir_can_be_set(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("F5VI_DEMO_MODEL_DIR", str(tmp_path / "demo"))
    assert Settings(data_dir=tmp_path / "state").demo_model_path == tmp_path / "demo"


def test_demo_fallback_is_off_unless_asked_for(clean_env: pytest.MonkeyPatch) -> None:
    assert Settings().demo_fallback is False
    clean_env.setenv("F5VI_DEMO_FALLBACK", "1")
    assert Settings().demo_fallback is True
