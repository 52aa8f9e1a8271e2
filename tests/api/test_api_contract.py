"""What the OpenAPI document promises is what the server does (issue 12, item 5): the name patterns it
enforces are documented, typed fields are strict, token-authorised downloads check the token before
the name, 405 lists every method of the path, and the SSE route documents its events."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from f5vi.api.openapi import build_openapi
from f5vi.config import Settings
from f5vi.jobs.models import JOB_ID_PATTERN
from f5vi.storage import SAFE_FILENAME_PATTERN
from f5vi.voices import REF_NAME_PATTERN, VOICE_ID_PATTERN
from server_helpers import assert_error_shape, loading_app_client, write_voice


def _client(tmp_path: Path, **overrides: Any) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path / "data",
        output_dir=tmp_path / "output",
        voices_dir=tmp_path / "voices",
        cleanup_interval_seconds=0,
        **overrides,
    )
    write_voice(settings.voices_dir, "v1")
    with loading_app_client(settings) as c:
        yield c


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path)


@pytest.fixture
def keyed_client(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path, api_key="s3cret")


def _parameter(schema: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    for parameter in schema["paths"][path][method]["parameters"]:
        if parameter["name"] == name:
            return parameter["schema"]
    raise AssertionError(f"{method.upper()} {path} has no parameter {name}")


def test_enforced_name_patterns_are_documented() -> None:
    schema = build_openapi()
    for method in ("get", "delete"):
        assert _parameter(schema, "/voices/{voice_id}", method, "voice_id")["pattern"] == VOICE_ID_PATTERN
    assert _parameter(schema, "/output/{filename}", "get", "filename")["pattern"] == SAFE_FILENAME_PATTERN
    for path, method in [
        ("/tts/progress/{job_id}", "get"),
        ("/tts/kill/{job_id}", "post"),
        ("/tts/progress/{job_id}/events", "get"),
        ("/confirm-download/{job_id}", "post"),
        ("/check-download/{job_id}", "get"),
    ]:
        assert _parameter(schema, path, method, "job_id")["pattern"] == JOB_ID_PATTERN
    components = schema["components"]["schemas"]
    assert components["TTSRequest"]["properties"]["ref_name"]["pattern"] == REF_NAME_PATTERN
    assert components["VoiceRef"]["properties"]["id"]["pattern"] == REF_NAME_PATTERN
    voice = components["SpeechRequest"]["properties"]["voice"]["anyOf"]
    assert {"type": "string", "pattern": REF_NAME_PATTERN}.items() <= voice[0].items()
    upload_id = components["Body_upload_voice"]["properties"]["voice_id"]
    assert re.fullmatch(upload_id["pattern"], "") and re.fullmatch(upload_id["pattern"], "vi_north_male")
    assert not re.fullmatch(upload_id["pattern"], "../x")


def test_numeric_bounds_are_json_schema_keywords() -> None:
    """``minimum``/``maximum``, which clients and testers read (pydantic can emit its own ``ge``)."""
    text = json.dumps(build_openapi())
    assert '"ge":' not in text and '"le":' not in text and '"lt":' not in text
    nfe = build_openapi()["components"]["schemas"]["TTSRequest"]["properties"]["nfe_step"]["anyOf"][0]
    assert (nfe["minimum"], nfe["maximum"]) == (1, 128)


@pytest.mark.parametrize(
    "extra",
    [{"seed": False}, {"seed": "7"}, {"speed": True}, {"speed": "0.9"}, {"nfe_step": "8"}, {"nfe_step": 8.5}],
)
def test_typed_fields_are_strict(client: TestClient, extra: dict[str, Any]) -> None:
    body = {"text": "xin chào", "ref_name": "v1", **extra}
    response = client.post("/tts", json=body)
    details = assert_error_shape(response, 422, "validation_error")["error"]["details"]
    assert details[0]["field"] == next(iter(extra))
    speech = {"input": "xin chào", "voice": "v1", **extra}
    assert_error_shape(client.post("/v1/audio/speech", json=speech), 422, "validation_error")


def test_json_numbers_keep_their_json_schema_meaning(client: TestClient) -> None:
    """An integer counts as a number, and 8.0 as an integer (JSON Schema's definitions)."""
    body = {"text": "xin chào", "ref_name": "v1", "speed": 1, "seed": 5.0, "nfe_step": 8.0}
    response = client.post("/tts", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["job_id"]


def test_token_download_checks_the_token_before_the_name(keyed_client: TestClient) -> None:
    """Without the key, a bad name must not be told apart from a wrong token (403 either way)."""
    for name in ("..passwd", "bad name.wav", "nope_00000000.wav", "x" * 300):
        response = keyed_client.get(f"/output/{name}", params={"token": "guess"})
        assert_error_shape(response, 403, "invalid_token")
    assert_error_shape(keyed_client.post("/confirm-download/nope", params={"token": "guess"}), 403)
    # With the key the name is judged as before.
    headers = {"Authorization": "Bearer s3cret"}
    assert_error_shape(keyed_client.get("/output/bad%20name.wav", headers=headers), 400, "invalid_filename")


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/voices/v1", {"GET", "DELETE"}),
        ("/voices", {"GET", "POST"}),
        ("/tts/progress/j1", {"GET"}),
        ("/output/x_00000000.wav", {"GET"}),
    ],
)
def test_405_allow_lists_every_method_of_the_path(client: TestClient, path: str, methods: set[str]) -> None:
    for method in ("OPTIONS", "PATCH"):
        response = client.request(method, path)
        assert_error_shape(response, 405, "method_not_allowed")
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert allowed - {"HEAD"} == methods, response.headers["allow"]


def test_sse_route_documents_its_events() -> None:
    """Each event is described (OpenAPI 3.1: ``schema`` is one event), its data as a JobView."""
    operation = build_openapi()["paths"]["/tts/progress/{job_id}/events"]["get"]
    media = operation["responses"]["200"]["content"]["text/event-stream"]
    event = media["schema"]
    assert event["properties"]["event"]["enum"] == ["progress", "done", "shutdown"]
    data = event["properties"]["data"]
    assert data["contentMediaType"] == "application/json"
    assert {"$ref": "#/components/schemas/JobView"} in data["contentSchema"]["anyOf"]
    for word in ("retry", "keep-alive", "done"):
        assert word in event["description"]
    assert "event: done" in media["example"]
