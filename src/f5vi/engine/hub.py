"""Hugging Face hub downloads that use the local cache at once when the hub cannot be reached.

``hf_hub_download`` retries a failed connection five times with back-off (about 23 s measured here) before
it falls back to the cache or gives up. When the hub's host name does not resolve at all, no retry will
help, so the loaders ask :func:`offline_reason` first and then download with ``local_files_only``: a cached
model loads immediately, a missing one fails immediately with a message that says why.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

RESOLVE_TIMEOUT_S = 3.0
"""A resolver slower than this is treated as working: only a definite lookup failure counts as offline."""


def _host_resolves(host: str, port: int, timeout: float) -> bool:
    outcome: dict[str, bool] = {}

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            outcome["resolves"] = True
        except (socket.gaierror, UnicodeError):
            outcome["resolves"] = False
        except OSError:  # anything else: not evidence of being offline
            outcome["resolves"] = True

    worker = threading.Thread(target=lookup, name="hub-dns-check", daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome.get("resolves", True)


def offline_reason(timeout: float = RESOLVE_TIMEOUT_S) -> str | None:
    """Why downloads must come from the local cache only, or None when the hub may be reachable."""
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return "HF_HUB_OFFLINE is set"
    endpoint = urlparse(constants.ENDPOINT)
    host = endpoint.hostname
    if host and not _host_resolves(host, endpoint.port or 443, timeout):
        return f"the hub's host {host} does not resolve (no network?)"
    return None


def hub_download(repo_id: str, filename: str, *, local_only: bool = False) -> Path:
    """One file of a hub repo, from the cache (``local_only``) or the network; hub errors propagate."""
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo_id=repo_id, filename=filename, local_files_only=local_only))


def download_vocoder_files(repo_id: str, files: tuple[str, ...], what: str = "vocoder") -> list[Path]:
    """``files`` of the vocoder repo ``repo_id`` (Vocos or BigVGAN), cache first when offline; a failure
    is a :class:`~f5vi.engine.errors.ModelLoadError` that says how to fix it (``F5VI_VOCODER``)."""
    from f5vi.engine.errors import ModelLoadError

    offline = offline_reason()
    paths: list[Path] = []
    for filename in files:
        try:
            paths.append(hub_download(repo_id, filename, local_only=offline is not None))
        except Exception as exc:  # hub errors come in many classes (offline, 404, auth, network, bad id)
            why = f" ({offline}: only the local cache was looked at)" if offline else ""
            raise ModelLoadError(
                f"cannot get {filename} of {what} {repo_id!r}{why} (no local directory of that name; tried "
                f"it as a Hugging Face repo id: {type(exc).__name__}: {exc}). If this machine is offline "
                f"(HF_HUB_OFFLINE=1), download the {what} beforehand or set F5VI_VOCODER to a local "
                f"directory with {' and '.join(files)}."
            ) from exc
    return paths
