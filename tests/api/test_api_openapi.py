"""The committed openapi.json matches the app; every operation is fully described; /docs serves."""

from __future__ import annotations

from pathlib import Path

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from f5vi.api.app import ROUTER_MODULES, create_app
from f5vi.api.openapi import build_openapi, openapi_matches, render_openapi, write_openapi
from f5vi.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = REPO_ROOT / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    assert openapi_matches(COMMITTED), (
        "openapi.json is out of date: run `python -m f5vi export-openapi` (or `make openapi`) and commit it"
    )


def test_export_is_deterministic_and_settings_independent(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "openapi.json"
    write_openapi(out)
    monkeypatch.setenv("F5VI_API_KEY", "something")
    monkeypatch.setenv("F5VI_MAX_TEXT_CHARS", "7")
    assert out.read_text(encoding="utf-8") == render_openapi()
    assert openapi_matches(out)
    out.write_text(out.read_text().replace('"f5vi"', '"changed"', 1))
    assert not openapi_matches(out)
    assert not openapi_matches(tmp_path / "missing.json")


def test_every_operation_has_an_id_and_typed_responses() -> None:
    schema = build_openapi()
    seen_ids = set()
    for path, item in schema["paths"].items():
        for method, op in item.items():
            op_id = op.get("operationId")
            assert op_id and op_id not in seen_ids, (path, method)
            seen_ids.add(op_id)
            assert op.get("summary"), (path, method)
            for code, response in op["responses"].items():
                if code.startswith("3"):
                    continue  # redirects have no body
                content = response.get("content")
                assert content, f"{method.upper()} {path} {code} has no response model"
                for media in content.values():
                    assert media.get("schema"), (path, method, code)
            codes = set(op["responses"])
            if path != "/health":
                assert {"401", "500"} <= codes, (path, method)
                # Capability URLs also take the job's token instead of the key (an alternative).
                capability = path.startswith(("/output/", "/confirm-download/")) or path.endswith(
                    "/subtitles"
                )
                expected = [{"bearerAuth": []}, {"downloadToken": []}] if capability else [{"bearerAuth": []}]
                assert op.get("security") == expected, (path, method)
    error_schema = schema["components"]["schemas"]["ErrorResponse"]
    assert error_schema["required"] == ["error"]
    submit = schema["paths"]["/tts"]["post"]
    assert {"202", "400", "404", "409", "413", "422", "429", "503"} <= set(submit["responses"])
    assert submit["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorResponse"
    )
    assert "HTTPValidationError" not in schema["components"]["schemas"]  # our 422 shape, not FastAPI's


def test_docs_page_and_schema_list_every_route(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", output_dir=tmp_path / "o", voices_dir=tmp_path / "v")
    app = create_app(settings)
    client = TestClient(app)  # no lifespan: docs need no engine
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text and "/openapi.json" in docs.text
    served = client.get("/openapi.json").json()
    routes = {
        (route.path, method.lower())
        for module in ROUTER_MODULES
        for route in module.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    listed = {(path, method) for path, item in served["paths"].items() for method in item}
    assert listed == routes
    expected = {
        ("/health", "get"),
        ("/status", "get"),
        ("/voices", "get"),
        ("/voices", "post"),
        ("/voices/{voice_id}", "get"),
        ("/voices/{voice_id}", "delete"),
        ("/tts", "post"),
        ("/tts/progress/{job_id}", "get"),
        ("/tts/kill/{job_id}", "post"),
        ("/tts/{job_id}/subtitles", "get"),
        ("/normalize", "post"),
        ("/lexicon", "get"),
        ("/output/{filename}", "get"),
        ("/confirm-download/{job_id}", "post"),
        ("/check-download/{job_id}", "get"),
        ("/cleanup", "post"),
        ("/v1/audio/speech", "post"),
        ("/tts/progress/{job_id}/events", "get"),
        ("/metrics", "get"),
        ("/v1/models", "get"),
        ("/v1/models/{model}", "get"),
        ("/v1/audio/voices", "get"),
    }
    assert listed == expected


def test_the_served_schema_describes_the_server_as_configured(tmp_path: Path) -> None:
    """Issue 25, item 6: a keyless server documented a bearer security it does not require."""
    keyless = TestClient(create_app(Settings(data_dir=tmp_path / "a", output_dir=tmp_path / "o"))).get(
        "/openapi.json"
    )
    schema = keyless.json()
    assert "securitySchemes" not in schema.get("components", {})
    for item in schema["paths"].values():
        for op in item.values():
            assert "security" not in op and "401" not in op["responses"], op["operationId"]
    keyed = create_app(Settings(data_dir=tmp_path / "b", output_dir=tmp_path / "o", api_key="k"))
    served = TestClient(keyed).get("/openapi.json").json()  # public: no key needed to read it
    assert served == build_openapi()  # the keyed server serves the committed description
    assert served["paths"]["/tts"]["post"]["security"] == [{"bearerAuth": []}]
