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
