"""The playground's first-hour paper cuts, in Debian's headless Chromium (Playwright, no download).

Against an in-process server whose ODE steps the test holds (``paced_server``), so what is asserted is
order and state, never time:

- the demo model is announced by a full-width banner (role ``alert``), not a word in the header;
- a blank Speed field means the server's default (it is left out, not sent as 0);
- at 390 px the header stacks (title, then status, full width) and every label stays beside its
  control; in dark mode too;
- a one-chunk text streamed over the WebSocket plays its first part while the rest is held;
- Stop while a job runs: the job's own "Cancelled." is not overwritten by the answer to the kill when
  that answer comes last (the answer is held back by the test until the page shows "Cancelled.").

``F5VI_WRITE_SCREENSHOT=1`` refreshes docs/playground-390.png (light) and docs/playground-dark.png.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from browser_helpers import launch_chromium
from paced_server import StepGate, paced_server
from realtime_helpers import API_KEY, LONG_TEXT, SHORT_TEXT

REPO_ROOT = Path(__file__).resolve().parents[2]
NFE = 4  # paced_server's default ODE steps


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> StepGate:
    gate = StepGate(monkeypatch)
    gate.release_on_cancel(monkeypatch)
    return gate


@pytest.fixture
def server(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, gate: StepGate
) -> Iterator[httpx.Client]:
    with paced_server(tmp_path, tmp_path_factory.getbasetemp(), progress_persist_seconds=0) as client:
        yield client


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not displayed"
    return box


def _beside(page: Any, label: str, control: str) -> None:
    """The label and its control on one line, the label first."""
    lab, ctl = _box(page, label), _box(page, control)
    assert lab["x"] + lab["width"] <= ctl["x"], (label, lab, ctl)
    assert ctl["y"] < lab["y"] + lab["height"] and lab["y"] < ctl["y"] + ctl["height"], (label, lab, ctl)


def test_playground_paper_cuts(server: httpx.Client, gate: StepGate, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    kills: list[tuple[Any, Any]] = []
    shots: dict[str, Path] = {}
    with sync_playwright() as playwright:
        browser = launch_chromium(
            playwright,
            tmp_path / "profile",
            viewport={"width": 390, "height": 844},
        )
        try:
            page = browser.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{server.base_url}/ui/")

            # 4. The demo model: a banner across the page, announced to screen readers.
            page.wait_for_selector("#demo-banner", state="visible")
            banner = _box(page, "#demo-banner")
            assert banner["width"] >= 389 and banner["y"] < _box(page, "h1")["y"]
            assert page.get_attribute("#demo-banner", "role") == "alert"
            assert "noise" in page.text_content("#demo-banner")

            # 10. 390 px: the header stacks; labels stay with their controls.
            page.wait_for_function("document.getElementById('health').textContent.startsWith('Server')")
            title, status = _box(page, "h1"), _box(page, "#health")
            assert status["y"] >= title["y"] + title["height"] and status["width"] >= 300, (title, status)
            page.fill("#api-key", API_KEY)
            page.press("#api-key", "Enter")
            page.wait_for_function("document.querySelectorAll('#voice option').length >= 1")
            for label, control in (
                ("[for=voice]", "#voice"),
                ("[for=speed]", "#speed"),
                ("[for=format]", "#format"),
            ):
                _beside(page, label, control)
            shots["playground-390.png"] = tmp_path / "narrow.png"
            page.screenshot(path=str(shots["playground-390.png"]), full_page=True)

            # 5. A blank Speed field is the server's default (0.9), not 0.
            page.fill("#speed", "")
            page.fill("#text", SHORT_TEXT)
            page.click("#preview")
            page.wait_for_function("document.getElementById('norm-summary').textContent !== ''")
            summary = page.text_content("#norm-summary")
            assert "at speed 0.9" in summary, summary

            # 2. Stop while a job runs; the kill's answer arrives after the job's own last event.
            def hold_kill(route: Any) -> None:
                kills.append((route, route.fetch()))  # the server cancels now; the page waits

            page.route("**/tts/kill/**", hold_kill)
            gate.hold_at(gate.steps + 2)  # a step of the job below
            page.fill("#text", LONG_TEXT)
            page.click("#synthesize")
            assert gate.holding.wait(120), "the job never reached its second ODE step"
            page.wait_for_function("document.getElementById('stage').textContent.startsWith('running')")
            assert not page.is_disabled("#stop")
            page.click("#stop")
            page.wait_for_function("document.getElementById('stage').textContent === 'Cancelled.'")
            for _ in range(400):  # the held kill's own fetch may return after the job's event showed it
                if kills:
                    break
                page.wait_for_timeout(50)  # lets Playwright run the route handler
            assert len(kills) == 1 and kills[0][1].json()["status"] == "cancelled"
            assert gate.steps == gate.steps_at_cancel  # no ODE step started after the cancel
            route, answer = kills[0]
            route.fulfill(response=answer)
            page.wait_for_function("document.getElementById('result').dataset.cancel === 'cancelled'")
            assert page.text_content("#stage") == "Cancelled."
            assert page.eval_on_selector("#progress", "p => p.value") == 0
            assert not page.is_disabled("#synthesize") and page.is_disabled("#stop")

            # 6. A one-chunk text streams its first part early, and the page says only what it knows.
            one_chunk = "Xin chào các bạn, hôm nay trời đẹp quá và chúng ta cùng nhau đi dạo."
            plan = server.post("/normalize", json={"text": one_chunk}).json()
            assert plan["chunk_count"] == 1
            gate.hold_at(gate.steps + NFE + 1)  # the second part's first step
            page.fill("#text", one_chunk)
            page.click("#stream")
            page.wait_for_function("document.getElementById('stage').textContent.startsWith('Playing:')")
            assert gate.holding.is_set() and not gate.released_by_timeout  # audio out, the rest held
            gate.release()
            page.wait_for_function("document.getElementById('stage').textContent.startsWith('Streamed')")
            assert int(page.eval_on_selector("#result", "el => el.dataset.frames")) >= 2

            # 3 (seen): dark mode at desktop width.
            page.emulate_media(color_scheme="dark")
            page.set_viewport_size({"width": 1280, "height": 900})
            page.fill("#speed", "0.9")
            page.click("#preview")
            page.wait_for_selector("#norm-chunks li")
            shots["playground-dark.png"] = tmp_path / "dark.png"
            page.screenshot(path=str(shots["playground-dark.png"]), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    for name, shot in shots.items():
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("F5VI_WRITE_SCREENSHOT") == "1":
            shutil.copyfile(shot, REPO_ROOT / "docs" / name)
