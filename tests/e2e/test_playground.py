"""The playground page at /ui: served offline from the package, public, outside the API schema; and in
a real headless Chromium (Debian's, driven by Playwright) it lists and uploads voices, previews the
normalisation, streams audio through Web Audio as it arrives, runs a job with SSE progress and ends
with a decodable <audio> source, whose text then lights up word by word as it plays (read-along,
with the job's WebVTT as a <track>). ``F5VI_WRITE_SCREENSHOT=1`` also saves the final page to
docs/playground.png and the read-along to docs/readalong.png."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import srt
from fastapi.testclient import TestClient

from browser_helpers import launch_chromium
from f5vi.api.app import create_app
from f5vi.config import Settings
from server_helpers import LiveServer, assert_error_shape, demo_model, poll_until, server_env, wav_bytes

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = "playground-key"
TEXT = " ".join(
    [
        "Ngày 2/9/2024, TP.HCM có 1.250 người tham dự lễ kỷ niệm; vé vào cửa giá 150.000đ.",
        "Lúc 19h30, GS. Trần Văn Bình phát biểu về kế hoạch 5 năm với ngân sách 2,5 tỷ USD.",
        "Dự án khởi công từ ngày 15/3/2025 và dự kiến hoàn thành trước năm 2030.",
    ]
)


@pytest.fixture
def keyed_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path / "d", output_dir=tmp_path / "o", voices_dir=tmp_path / "v", api_key=KEY
    )
    yield TestClient(create_app(settings))  # no lifespan: the page needs no engine


def test_root_sends_to_the_page_and_its_files_are_public_and_offline(keyed_client: TestClient) -> None:
    root = keyed_client.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/ui/"
    assert keyed_client.get("/ui", follow_redirects=False).headers["location"].endswith("/ui/")
    page = keyed_client.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"#:]+)"', page.text)
    assert {"playground.css", "playground.js"} <= set(assets), assets
    for text in [page.text, *(keyed_client.get(f"/ui/{asset}").text for asset in assets)]:
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), "external URL in the page"
    for asset in ("playground.css", "playground.js"):
        assert keyed_client.get(f"/ui/{asset}").status_code == 200
    assert_error_shape(keyed_client.get("/voices"), 401, "unauthorized")  # the API still needs the key
    assert keyed_client.get("/ui/..%2F..%2Fpyproject.toml").status_code == 404
    assert keyed_client.get("/ui/missing.js").status_code == 404


def test_the_page_is_not_part_of_the_api_schema(keyed_client: TestClient) -> None:
    paths = keyed_client.get("/openapi.json").json()["paths"]
    assert "/normalize" in paths
    assert not any(path == "/" or path.startswith("/ui") for path in paths)


# ------------------------------------------------------------------------------------------ browser
@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("playground")
    shutil.copytree(REPO_ROOT / "voices", root / "voices")
    model = demo_model(tmp_path_factory.getbasetemp())
    env = server_env(root, model, api_key=KEY, normalizer="vinorm", nfe_step=4, progress_persist_seconds=0.2)
    with LiveServer(root, env) as server:
        server.start()
        yield server


def _stage_settled(prefix: str) -> str:
    return (
        "(() => { const s = document.getElementById('stage');"
        f" return s.textContent.startsWith({prefix!r}) || s.classList.contains('error'); }})()"
    )


AUDIO_READY = (
    "(() => { const a = document.getElementById('audio'); return a.readyState >= 1 && a.duration > 0; })()"
)
TRACK_LOADED = (
    "(() => { const t = document.getElementById('audio').textTracks[0];"
    " return t && t.cues && t.cues.length > 0; })()"
)
DECODE_AUDIO = """async () => {
  const audio = document.getElementById('audio');
  const bytes = await (await fetch(audio.src)).arrayBuffer();
  const decoded = await new OfflineAudioContext(1, 1, 24000).decodeAudioData(bytes);
  return {duration: decoded.duration, src: audio.src, element: audio.duration};
}"""


def test_playground_in_chromium(live: LiveServer, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    voice_file = tmp_path / "my_voice.wav"
    voice_file.write_bytes(wav_bytes(4.0))
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch_chromium(
            playwright,
            tmp_path / "profile",
            viewport={"width": 1000, "height": 1300},
        )
        try:
            page = browser.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{live.base_url}/")
            assert page.url == f"{live.base_url}/ui/"
            page.wait_for_function("document.getElementById('voice-info').textContent.includes('API key')")

            page.fill("#api-key", KEY)
            page.press("#api-key", "Enter")
            page.wait_for_function("document.querySelectorAll('#voice option').length >= 3")
            shipped = page.eval_on_selector_all("#voice option", "options => options.map(o => o.value)")
            assert {"vi_north_male", "vi_central_male", "vi_south_male"} <= set(shipped)

            page.click("summary")  # upload a voice with its transcript
            page.set_input_files("#upload-file", str(voice_file))
            page.fill("#upload-transcript", "xin chào các bạn, hôm nay trời đẹp quá.")
            page.click("#upload-form button[type=submit]")
            page.wait_for_function(
                "document.getElementById('upload-status').textContent.startsWith('Uploaded')"
            )
            assert page.input_value("#voice") == "my_voice"
            assert live.client.get("/voices/my_voice", headers={"Authorization": f"Bearer {KEY}"}).is_success

            page.select_option("#voice", "vi_north_male")
            page.fill("#text", TEXT)
            page.click("#preview")
            page.wait_for_selector("#norm-chunks li")
            plan = _normalize(live, TEXT)
            shown = page.eval_on_selector_all("#norm-chunks li", "items => items.length")
            assert shown == plan["chunk_count"] > 1
            assert plan["chunks"][0]["text"] in page.text_content("#norm-chunks")

            page.click("#stream")  # WebSocket PCM played with Web Audio as it arrives
            page.wait_for_function(_stage_settled("Streamed"), timeout=240_000)
            assert page.text_content("#stage").startswith("Streamed"), page.text_content("#stage")
            timings = page.eval_on_selector("#result", "el => ({...el.dataset})")
            assert int(timings["frames"]) > 1
            assert 0 < int(timings["firstAudioMs"]) < int(timings["doneMs"]), timings
            page.wait_for_function(AUDIO_READY)
            streamed = page.evaluate(DECODE_AUDIO)
            assert streamed["src"].startswith("blob:")
            assert abs(streamed["duration"] - plan["estimated_duration_seconds"]) < 0.05, streamed

            page.click("#synthesize")  # POST /tts, progress over SSE read with fetch()
            page.wait_for_function(_stage_settled("Done"), timeout=240_000)
            assert page.text_content("#stage").startswith("Done"), page.text_content("#stage")
            assert page.eval_on_selector("#progress", "p => p.value") == 100
            page.wait_for_function(AUDIO_READY)
            job_audio = page.evaluate(DECODE_AUDIO)
            assert "/output/" in job_audio["src"] and "token=" in job_audio["src"]
            assert abs(job_audio["duration"] - plan["estimated_duration_seconds"]) < 0.05, job_audio
            assert abs(job_audio["element"] - job_audio["duration"]) < 0.05
            assert page.get_attribute("#download", "href") == job_audio["src"]

            # read-along: the submitted text, each token timed; SRT/VTT links; the VTT as a <track>
            page.wait_for_selector("#readalong span")
            assert page.text_content("#readalong") == TEXT
            tokens = page.eval_on_selector_all("#readalong span", "spans => spans.map(s => s.textContent)")
            assert tokens == TEXT.split()
            assert page.get_attribute("#readalong", "data-method") == "estimated"
            for fmt in ("srt", "vtt"):
                link = page.get_attribute(f"#download-{fmt}", "href")
                assert link and f"format={fmt}" in link and "token=" in link
                assert live.client.get(link).status_code == 200  # works without the key
            page.wait_for_function(TRACK_LOADED)
            page.evaluate("document.getElementById('audio').play()")
            page.wait_for_function(
                "document.querySelector('#readalong span.now') !== null"
                " && document.getElementById('audio').currentTime > 2.5"
            )
            page.evaluate("document.getElementById('audio').pause()")
            said = page.eval_on_selector_all("#readalong span.said", "spans => spans.length")
            assert 0 < said < len(tokens)
            assert page.text_content("#caption")  # the track's cue at this time, shown under the text

            # the text front end in the preview: SSML parts and pauses, the lexicon entries that fired
            ssml = '<speak>GPT xin chào.<break time="400ms"/><prosody rate="slow">Bye GPT.</prosody></speak>'
            page.fill("#text", ssml)
            page.click("#lexicon-details summary")
            page.fill("#lexicon", "# mine\nGPT = gi pi ti")
            page.click("#preview")
            page.wait_for_selector("#norm-lexicon li")
            hits = page.eval_on_selector_all("#norm-lexicon li", "items => items.map(i => i.textContent)")
            assert len(hits) == 2 and all(h.startswith("“GPT” (characters ") for h in hits), hits
            assert "request lexicon" in hits[0]
            parts = page.text_content("#norm-parts")
            assert "400 ms silence before" in parts and "speed 0.72" in parts, parts

            page.click("summary")  # fold the upload form away for the pictures
            readalong = tmp_path / "readalong.png"
            page.locator("#result").screenshot(path=str(readalong))
            shot = tmp_path / "playground.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("F5VI_WRITE_SCREENSHOT") == "1":
        shutil.copyfile(shot, REPO_ROOT / "docs" / "playground.png")
        shutil.copyfile(readalong, REPO_ROOT / "docs" / "readalong.png")


def _normalize(live: LiveServer, text: str) -> dict[str, Any]:
    response = live.client.post(
        "/normalize",
        json={"text": text, "ref_name": "vi_north_male", "speed": 0.9},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


TRACK_PAGE = """async ([vttUrl, audioUrl]) => {
  const audio = document.createElement('audio');
  audio.src = audioUrl;
  const track = document.createElement('track');
  Object.assign(track, {kind: 'subtitles', srclang: 'vi', src: vttUrl, default: true});
  audio.append(track);
  document.body.append(audio);
  track.track.mode = 'hidden';
  await new Promise((resolve, reject) => {
    track.addEventListener('load', resolve);
    track.addEventListener('error', () => reject(new Error('the track did not load')));
  });
  const cues = Array.from(track.track.cues).map(c => ({start: c.startTime, end: c.endTime, text: c.text}));
  const fired = [];
  track.track.addEventListener('cuechange', () => {
    for (const cue of track.track.activeCues) fired.push({text: cue.text, at: audio.currentTime});
  });
  const firedFor = async (cue) => {
    while (!fired.some(f => f.text === cue.text)) await new Promise(r => setTimeout(r, 20));
  };
  await audio.play();  // from the start: the first cue fires
  await firedFor(cues[0]);
  audio.pause();
  audio.currentTime = Math.max(cues[1].start - 0.4, 0);  // just before the second cue
  await new Promise(resolve => audio.addEventListener('seeked', resolve, {once: true}));
  await audio.play();
  await firedFor(cues[1]);
  audio.pause();
  return {cues, fired};
}"""


def test_subtitles_load_as_a_track_and_the_cue_fires_at_its_time(live: LiveServer, tmp_path: Path) -> None:
    """The job's WebVTT in a browser <track>: the cues load as the SRT says; the first cue fires when
    the audio plays from the start, the second when playback reaches its start."""
    from playwright.sync_api import sync_playwright

    auth = {"Authorization": f"Bearer {KEY}"}
    text = "Xin chào các bạn, hôm nay trời đẹp quá. Chúng ta cùng nhau đi dạo công viên nhé."
    accepted = live.client.post(
        "/tts", json={"text": text, "ref_name": "vi_north_male", "seed": 1}, headers=auth
    )
    job_id = accepted.json()["job_id"]
    job, _ = poll_until(
        lambda: live.client.get(f"/tts/progress/{job_id}", headers=auth).json(),
        lambda j: j["state"] in ("succeeded", "failed"),
        timeout=240,
        interval=0.2,
    )
    assert job["state"] == "succeeded", job
    result = job["result"]
    expected = list(srt.parse(live.client.get(result["subtitle_urls"]["srt"]).text))
    assert len(expected) >= 2
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, tmp_path / "profile")
        try:
            page = browser.new_page()
            page.goto(f"{live.base_url}/ui/")  # same origin as the API: the track needs no CORS
            seen = page.evaluate(TRACK_PAGE, [result["subtitle_urls"]["vtt"], result["wav_url"]])
        finally:
            browser.close()
    assert [c["text"] for c in seen["cues"]] == [c.content for c in expected]
    assert [c["start"] for c in seen["cues"]] == pytest.approx([c.start.total_seconds() for c in expected])
    for cue in seen["cues"][:2]:  # each became active when the audio reached its start
        fired = next(f for f in seen["fired"] if f["text"] == cue["text"])
        assert cue["start"] - 0.05 <= fired["at"] <= cue["start"] + 0.5, (fired, cue)
