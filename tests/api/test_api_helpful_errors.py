"""Error messages name what fixes them: the close voice id and ``GET /voices``, the variable behind a
limit, JSON for a JSON route, the OpenAI listing's route; no pydantic "Value error," prefix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from f5vi.api.app import create_app
from f5vi.engine.synthesizer import Synthesizer
from server_helpers import assert_error_shape, local_settings, write_voice


@pytest.fixture
def client(tmp_path: Path, demo_synth: Synthesizer) -> Iterator[TestClient]:
    settings = local_settings(tmp_path, max_text_chars=100, cleanup_interval_seconds=0)
    for voice_id in ("vi_north_male", "vi_south_male", "other"):
        write_voice(settings.voices_dir, voice_id)
    with TestClient(create_app(settings, synthesizer=demo_synth)) as test_client:
        yield test_client


def _message(response, status: int, code: str) -> str:  # type: ignore[no-untyped-def]
    return str(assert_error_shape(response, status, code)["error"]["message"])


def test_an_unknown_voice_suggests_the_close_one_and_the_listing(client: TestClient) -> None:
    message = _message(
        client.post("/tts", json={"text": "xin chào", "ref_name": "vi_nort_male"}), 404, "voice_not_found"
    )
    assert "did you mean 'vi_north_male'" in message and "GET /voices" in message
    far = _message(client.post("/tts", json={"text": "xin chào", "ref_name": "zzz"}), 404, "voice_not_found")
    assert "did you mean" not in far and "GET /voices" in far


def test_whitespace_text_has_no_pydantic_prefix(client: TestClient) -> None:
    body = assert_error_shape(
        client.post("/tts", json={"text": "   ", "ref_name": "other"}), 422, "validation_error"
    )
    assert body["error"]["message"] == "text: text is empty"
    assert "Value error" not in str(body)


def test_a_text_over_the_limit_names_the_variable(client: TestClient) -> None:
    message = _message(
        client.post("/tts", json={"text": "a " * 60, "ref_name": "other"}), 422, "invalid_text"
    )
    assert "F5VI_MAX_TEXT_CHARS" in message and "the limit is 100" in message


@pytest.mark.parametrize("path", ["/tts", "/v1/audio/speech"])
def test_a_form_body_on_a_json_route_says_send_json(client: TestClient, path: str) -> None:
    response = client.post(path, data={"text": "xin chào", "ref_name": "other"})
    message = _message(response, 422, "validation_error")
    assert "send JSON" in message and "application/json" in message
    assert "application/x-www-form-urlencoded" in message


def test_the_openai_model_404_names_the_listing_route(client: TestClient) -> None:
    message = _message(client.get("/v1/models/nope"), 404, "model_not_found")
    assert "GET /v1/models" in message


def test_docs_give_the_json_body_limit_the_server_applies(repo_root: Path) -> None:
    from f5vi.api.app import json_body_limit
    from f5vi.config import Settings

    limit = json_body_limit(Settings())
    assert limit == 136_384
    assert f"{limit:,}" in (repo_root / "docs" / "security.md").read_text(encoding="utf-8")
