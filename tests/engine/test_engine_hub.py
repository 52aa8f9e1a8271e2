"""Hub sources when the hub's host does not resolve: the cache is used at once, a miss fails at once.

Without this, ``hf_hub_download`` spends ~23 s in connection retries before it looks at the cache or gives
up (``make serve`` on an offline machine waited that long before its demo fallback). The suite runs with
HF_HUB_OFFLINE=1 (conftest); these tests switch that off and make every DNS lookup fail instead, so nothing
here can reach a network either way.
"""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path

import pytest

from engine_helpers import NetworkWaits
from f5vi.engine import hub
from f5vi.engine.checkpoint import load_model
from f5vi.engine.demo import make_demo_model
from f5vi.engine.errors import ModelLoadError
from f5vi.engine.vocoder import load_vocoder

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Hub not marked offline, every name lookup fails, and an empty hub cache under tmp_path."""
    import huggingface_hub.constants as constants

    lookups: list[str] = []

    def failing_lookup(host: str, *args: object, **kwargs: object) -> list:
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(socket, "getaddrinfo", failing_lookup)
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def _cache_repo(cache: Path, repo_id: str, files: dict[str, Path]) -> None:
    """Lay files out as huggingface_hub's cache does after a download of ``main``."""
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name, source in files.items():
        shutil.copy(source, snapshot / name)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(COMMIT)


def test_unresolvable_host_is_reported_as_the_reason(no_dns: Path) -> None:
    reason = hub.offline_reason()
    assert reason is not None and "huggingface.co does not resolve" in reason


def test_uncached_model_fails_at_once_and_says_why(no_dns: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    waits = NetworkWaits(monkeypatch)  # "at once": no retry back-off, no connection attempt
    with pytest.raises(ModelLoadError, match=r"huggingface\.co does not resolve") as info:
        load_model("hynt/F5-TTS-Vietnamese-ViVoice")
    assert "is in the local cache" in str(info.value)  # "... and none of model_last.pt, ... is in the ..."
    with pytest.raises(ModelLoadError, match="does not resolve"):
        load_vocoder("charactr/vocos-mel-24khz")
    waits.assert_none()


def test_cached_model_and_vocoder_load_without_network(
    no_dns: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = make_demo_model(tmp_path / "demo")
    _cache_repo(
        no_dns,
        "f5vi-tests/cached-model",
        {"model_last.pt": model_dir / "model_last.pt", "vocab.txt": model_dir / "vocab.txt"},
    )
    _cache_repo(
        no_dns,
        "f5vi-tests/cached-vocos",
        {name: model_dir / "vocos" / name for name in ("config.yaml", "pytorch_model.bin")},
    )
    waits = NetworkWaits(monkeypatch)
    loaded = load_model("f5vi-tests/cached-model")
    vocoder = load_vocoder("f5vi-tests/cached-vocos")
    waits.assert_none()
    assert loaded.checkpoint_path.parent.name == COMMIT
    assert loaded.num_params > 0 and sum(p.numel() for p in vocoder.parameters()) > 0


def test_a_slow_resolver_is_not_taken_for_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants

    lookup_may_end, lookup_ended = threading.Event(), threading.Event()

    def slow_lookup(*args: object, **kwargs: object) -> list:
        lookup_may_end.wait(60)  # hangs until the test lets it go
        lookup_ended.set()
        return []

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(socket, "getaddrinfo", slow_lookup)
    assert hub.offline_reason(timeout=0.2) is None
    assert not lookup_ended.is_set()  # answered while the lookup still hung: it did not wait for it
    lookup_may_end.set()


def test_offline_mode_needs_no_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants

    def forbidden_lookup(*args: object, **kwargs: object) -> list:
        raise AssertionError("no DNS lookup expected in offline mode")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(socket, "getaddrinfo", forbidden_lookup)
    assert hub.offline_reason() == "HF_HUB_OFFLINE is set"
