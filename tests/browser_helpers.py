"""Debian's Chromium, driven by Playwright, as the browser tests use it (no browser download).

The flags keep Chromium off the network it cannot reach here (its background requests would be
refused many at a time) and let audio play without a user gesture.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Debian's chromium is needed for this test (make test installs it)")
    return path


def launch_chromium(playwright: Any, profile: Path, **options: Any) -> Any:
    """A persistent headless Chromium context in ``profile`` (``options``: viewport, color_scheme, ...)."""
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS, **options
    )
