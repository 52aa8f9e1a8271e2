"""The Swagger UI at /docs renders in a real headless browser with no internet access and shows
every operation of the API (its assets are served by f5vi itself, not a CDN)."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from f5vi.api.app import create_app
from f5vi.config import Settings
from server_helpers import free_port


@pytest.fixture()
def docs_server(tmp_path: Path) -> Iterator[str]:
    settings = Settings(
        data_dir=tmp_path / "d", output_dir=tmp_path / "o", voices_dir=tmp_path / "v", api_key="k"
    )
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/docs", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("a Chromium browser is needed for this test (make test installs Debian's chromium)")


def test_swagger_ui_renders_every_route_offline(docs_server: str, tmp_path: Path) -> None:
    page = httpx.get(f"{docs_server}/docs").text
    assert "cdn." not in page and "unpkg" not in page  # nothing fetched from outside
    for asset in re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', page):
        assert httpx.get(f"{docs_server}{asset}").status_code == 200, asset

    dom = subprocess.run(
        [
            _browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"{docs_server}/docs",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    rendered = set(re.findall(r'data-path="([^"]+)"', dom))
    schema = httpx.get(f"{docs_server}/openapi.json").json()
    assert rendered == set(schema["paths"]), (rendered, set(schema["paths"]))
    assert {"/tts", "/tts/progress/{job_id}", "/voices", "/output/{filename}"} <= rendered
