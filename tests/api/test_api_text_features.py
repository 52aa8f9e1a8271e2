"""Lexicons and SSML through every front door (in-process app, real engine on the demo model).

``POST /normalize`` shows which entries fired where; ``POST /tts``, ``/v1/audio/speech``, the
WebSocket stream and RunPod's input take ``lexicon`` and ``text_type``; the three lexicon levels keep
their precedence; bad entries, unsupported tags and hostile SSML are 4xx; a malformed lexicon file
stops the start with file, line and reason.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from f5vi.api.app import create_app
from f5vi.engine.synthesizer import Synthesizer
from f5vi.engine.text.lexicon import LexiconFileError
from f5vi.jobs.models import JobRequest
from f5vi.jobs.requests import TTSRequest
from realtime_helpers import wait_job
from server_helpers import assert_error_shape, local_settings, write_voice

SERVER_LEXICON = "# brands\nGPT = gờ pê tê\nVNPT = vê en pê tê\nAI = ây ai\n"
VOICE_LEXICON = "GPT = gi pi ti của giọng\nAI == trí tuệ nhân tạo\n"
TEXT = "GPT, VNPT và AI; gpt và ai."


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    server_file = tmp_path / "server.lexicon"
    server_file.write_text(SERVER_LEXICON, encoding="utf-8")
    settings = local_settings(
        tmp_path,
        device="cpu",
        normalizer="none",
        nfe_step=2,
        cleanup_interval_seconds=0,
        lexicon_paths=[server_file],
    )
    write_voice(settings.voices_dir, "v1")
    write_voice(settings.voices_dir, "v2")
    (settings.voices_dir / "v2.lexicon").write_text(VOICE_LEXICON, encoding="utf-8")
    return settings


@pytest.fixture
def client(settings: Any, demo_synth: Synthesizer) -> Iterator[TestClient]:
    with TestClient(create_app(settings, synthesizer=demo_synth)) as test_client:
        yield test_client


def _normalize(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/normalize", json={"ref_name": "v1", **body})
    assert response.status_code == 200, response.text
    return response.json()


def test_get_lexicon_lists_the_servers_entries(client: TestClient, settings: Any) -> None:
    listed = client.get("/lexicon").json()
    assert listed["count"] == 3
    assert [(e["term"], e["say"], e["level"]) for e in listed["entries"]] == [
        ("GPT", "gờ pê tê", "server"),
        ("VNPT", "vê en pê tê", "server"),
        ("AI", "ây ai", "server"),
    ]
    assert listed["entries"][0]["origin"] == f"{settings.lexicon_paths[0]}:2"


def test_precedence_request_over_voice_over_server(client: TestClient) -> None:
    server_only = _normalize(client, text=TEXT)
    assert server_only["normalized_text"] == "gờ pê tê, vê en pê tê và ây ai; gờ pê tê và ây ai."
    voice = _normalize(client, text=TEXT, ref_name="v2")
    # the voice's GPT wins over the server's; its AI is case-sensitive, so "ai" falls to the server's
    assert voice["normalized_text"] == (
        "gi pi ti của giọng, vê en pê tê và trí tuệ nhân tạo; gi pi ti của giọng và ây ai."
    )
    lexicon = [{"term": "gpt", "say": "chat gờ pê tê"}, {"term": "ai", "say": "a i", "case_sensitive": True}]
    request = _normalize(client, text=TEXT, ref_name="v2", lexicon=lexicon)
    assert request["normalized_text"] == (
        "chat gờ pê tê, vê en pê tê và trí tuệ nhân tạo; chat gờ pê tê và a i."
    )
    hits = [
        (h["char_start"], h["char_end"], h["matched"], h["entry"]["level"]) for h in request["lexicon_hits"]
    ]
    assert hits == [
        (0, 3, "GPT", "request"),
        (5, 9, "VNPT", "server"),
        (13, 15, "AI", "voice"),
        (17, 20, "gpt", "request"),
        (24, 26, "ai", "request"),
    ]
    assert all(TEXT[a:b] == word for a, b, word, _ in hits)


def test_tagged_voice_parts_use_their_own_voices_lexicon(client: TestClient) -> None:
    text = "GPT. [v2] GPT."
    plan = _normalize(client, text=text)
    assert [s["normalized_text"] for s in plan["segments"]] == ["gờ pê tê.", "gi pi ti của giọng."]
    assert [(h["char_start"], h["entry"]["level"]) for h in plan["lexicon_hits"]] == [
        (0, "server"),
        (10, "voice"),
    ]


def test_ssml_preview_shows_parts_pauses_speeds_and_spans(client: TestClient) -> None:
    text = (
        '<speak>Xin chào GPT.<break time="400ms"/><prosody rate="slow">'
        '<say-as interpret-as="characters">AI</say-as> chậm.</prosody><break time="1s"/></speak>'
    )
    plan = _normalize(client, text=text, speed=1.0)
    assert plan["ssml"] is True and plan["trailing_pause_seconds"] == 1.0
    parts = [(s["speed"], s["pause_before_seconds"], s["normalized_text"]) for s in plan["segments"]]
    assert parts == [(1.0, 0.0, "xin chào gờ pê tê."), (0.8, 0.4, "a i chậm.")]
    first = plan["segments"][0]
    assert text[first["char_start"] : first["char_end"]] == "Xin chào GPT."
    (hit,) = plan["lexicon_hits"]  # the say-as reading "a i" is the user's: no lexicon on it
    assert text[hit["char_start"] : hit["char_end"]] == "GPT"


def test_bad_requests_are_4xx_naming_what_is_wrong(client: TestClient) -> None:
    bad_entry = {"text": "a", "ref_name": "v1", "lexicon": [{"term": "a b]", "say": "x"}]}
    error = assert_error_shape(client.post("/tts", json=bad_entry), 422, "invalid_parameter")["error"]
    assert "lexicon[0]" in error["message"]
    missing_say = {"text": "a", "ref_name": "v1", "lexicon": [{"term": "x"}]}
    assert_error_shape(client.post("/tts", json=missing_say), 422, "validation_error")
    phoneme = '<speak>Xin chào\n<phoneme alphabet="ipa" ph="ʃ">s</phoneme></speak>'
    for path, body in (
        ("/tts", {"text": phoneme, "ref_name": "v1"}),
        ("/normalize", {"text": phoneme, "ref_name": "v1"}),
        ("/v1/audio/speech", {"input": phoneme, "voice": "v1", "response_format": "wav"}),
    ):
        message = assert_error_shape(client.post(path, json=body), 422, "invalid_ssml")["error"]["message"]
        assert "<phoneme>" in message and "line 2, column 1 (character 16)" in message
    text_type = {"text": "a <phoneme/>", "ref_name": "v1", "text_type": "ssml"}
    assert_error_shape(client.post("/normalize", json=text_type), 422, "invalid_ssml")


def test_one_megabyte_and_billion_laughs_are_4xx(client: TestClient) -> None:
    big = "<speak>" + "xin chào " * 120_000 + "</speak>"  # 1.08 MB: refused before it is read whole
    for path, body in (
        ("/tts", {"text": big, "ref_name": "v1"}),
        ("/normalize", {"text": big, "ref_name": "v1"}),
        ("/v1/audio/speech", {"input": big, "voice": "v1"}),
    ):
        message = assert_error_shape(client.post(path, json=body), 413, "payload_too_large")["error"][
            "message"
        ]
        assert "limit" in message
    # under the body limit but over F5VI_MAX_TEXT_CHARS (20 000): the text's own limit, before parsing
    over = "<speak>" + "xin chào " * 2_500 + "</speak>"
    response = client.post("/tts", json={"text": over, "ref_name": "v1", "text_type": "ssml"})
    assert "the limit is 20000" in assert_error_shape(response, 422, "invalid_text")["error"]["message"]
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(
            f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
        )
        + "]><speak>&lol9;</speak>"
    )
    for path, body in (
        ("/tts", {"text": laughs, "ref_name": "v1"}),
        ("/v1/audio/speech", {"input": laughs, "voice": "v1", "response_format": "wav"}),
    ):
        message = assert_error_shape(client.post(path, json=body), 422, "invalid_ssml")["error"]["message"]
        assert "DOCTYPE" in message


def test_tts_job_with_ssml_and_lexicon_persists_them(client: TestClient) -> None:
    body = {
        "text": '<speak>GPT xin chào.<break time="500ms"/>Tạm biệt.</speak>',
        "ref_name": "v1",
        "seed": 3,
        "lexicon": [{"term": "GPT", "say": "gi pi ti"}],
    }
    accepted = client.post("/tts", json=body)
    assert accepted.status_code == 202, accepted.text
    job = wait_job(client, accepted.json()["job_id"], timeout=300)
    assert job["state"] == "succeeded", job
    assert job["result"]["normalized_text"] == "gi pi ti xin chào. tạm biệt."
    wave, _ = sf.read(io.BytesIO(client.get(job["result"]["wav_url"]).content), dtype="float32")
    quiet = np.abs(wave) < 1e-4
    longest, run = 0, 0
    for q in quiet:
        run = run + 1 if q else 0
        longest = max(longest, run)
    assert abs(longest - 12_000) <= 240  # the 500 ms break, within 10 ms (16-bit output)
    stored = JobRequest.from_json(
        JobRequest(
            "t", "v", "v", 1, 2, None, "wav", 2, -1, "euler", 0.1, "ssml", (("a", "b", True),)
        ).to_json()
    )
    assert stored.lexicon == (("a", "b", True),) and stored.text_type == "ssml"


def test_openai_websocket_and_runpod_take_the_lexicon(client: TestClient) -> None:
    lexicon = [{"term": "xin", "say": "sin"}]
    body = {"input": "xin chào.", "voice": "v1", "response_format": "wav", "lexicon": lexicon}
    assert client.post("/v1/audio/speech", json=body).status_code == 200
    bad = {**body, "lexicon": [{"term": "x]", "say": "y"}]}
    assert_error_shape(client.post("/v1/audio/speech", json=bad), 422, "invalid_parameter")
    with client.websocket_connect("/tts/stream") as ws:
        assert json.loads(ws.receive_text())["type"] == "ready"
        ws.send_text(
            json.dumps(
                {"id": "a", "text": "xin chào.", "voice": "v1", "lexicon": [{"term": "x]", "say": "y"}]}
            )
        )
        error = json.loads(ws.receive_text())
        assert (
            error["type"] == "error"
            and error["code"] == "invalid_parameter"
            and "lexicon[0]" in error["message"]
        )
        ws.send_text(
            json.dumps({"id": "b", "text": '<speak>a<phoneme ph="x">b</phoneme></speak>', "voice": "v1"})
        )
        error = json.loads(ws.receive_text())
        assert error["code"] == "invalid_ssml" and "<phoneme>" in error["message"], error
    runpod_input = {"text": "<speak>xin</speak>", "ref_name": "v1", "lexicon": lexicon, "text_type": "ssml"}
    params = TTSRequest.model_validate(runpod_input).to_input()  # the RunPod worker's schema
    assert params.lexicon == (("xin", "sin", False),) and params.text_type == "ssml"


def test_a_malformed_lexicon_file_stops_the_start(settings: Any, demo_synth: Synthesizer) -> None:
    settings.lexicon_paths[0].write_text("GPT = gờ pê tê\nno equals sign here\n", encoding="utf-8")
    with (
        pytest.raises(LexiconFileError, match=r"server\.lexicon:2: expected 'TERM = READING'"),
        TestClient(create_app(settings, synthesizer=demo_synth)),
    ):
        pass
    settings.lexicon_paths[0].write_text("GPT = ok\n", encoding="utf-8")
    (settings.voices_dir / "v2.lexicon").write_text("\n\nAI = \n", encoding="utf-8")
    with (
        pytest.raises(LexiconFileError, match=r"v2\.lexicon:3: the reading of 'AI' is empty"),
        TestClient(create_app(settings, synthesizer=demo_synth)),
    ):
        pass
