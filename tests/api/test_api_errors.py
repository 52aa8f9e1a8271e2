"""HTTP behaviour that needs no engine: error shape, validation, auth, limits, path safety,
readiness while the model loads or after it failed. (The engine is never loaded here: the loader
either waits until the test ends or raises ModelLoadError.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from f5vi.api.app import create_app
from f5vi.config import Settings
from f5vi.engine.errors import ModelLoadError
from f5vi.errors import scrub
from server_helpers import assert_error_shape, local_settings, wav_bytes, write_voice


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        queue_max=4,
        max_text_chars=500,
        max_upload_bytes=200_000,
        max_request_bytes=400_000,
        cleanup_interval_seconds=0,
    )
    values.update(overrides)
    return local_settings(tmp_path, **values)


@pytest.fixture
def loading_client(tmp_path: Path) -> Iterator[TestClient]:
    """An app whose engine is still loading: jobs queue up but never run."""
    release = threading.Event()

    def never_loads(settings: Settings) -> Any:
        release.wait(60)
        raise ModelLoadError("test ended")

    settings = make_settings(tmp_path)
    write_voice(settings.voices_dir, "v1")
    app = create_app(settings, engine_loader=never_loads)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client
    finally:
        release.set()


@pytest.fixture
def failed_client(tmp_path: Path) -> Iterator[TestClient]:
    def fails(settings: Settings) -> Any:
        raise ModelLoadError(f"checkpoint not found at {tmp_path}/models/model_last.pt")

    settings = make_settings(tmp_path)
    write_voice(settings.voices_dir, "v1")
    app = create_app(settings, engine_loader=fails)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def wait_health(client: TestClient, status: str) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = client.get("/health").json()
        if body["status"] == status:
            return body
        time.sleep(0.02)
    raise AssertionError(body)


# ------------------------------------------------------------------------------------ readiness
def test_health_while_loading_is_503_not_ready(loading_client: TestClient) -> None:
    response = loading_client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "loading" and body["ready"] is False and body["model"] is None
    status = loading_client.get("/status").json()
    assert status["engine_status"] == "loading" and status["model_loaded"] is False
    assert status["busy"] is False and status["queue_depth"] == 0


def test_failed_engine_is_reported_without_server_paths(failed_client: TestClient) -> None:
    body = wait_health(failed_client, "unhealthy")
    response = failed_client.get("/health")
    assert response.status_code == 503
    assert body["ready"] is False and "checkpoint not found" in body["error"]
    assert "/models/" not in body["error"] and "/tmp" not in response.text
    submit = failed_client.post("/tts", json={"text": "xin chào", "ref_name": "v1"})
    assert_error_shape(submit, 503, "service_unavailable")
    assert failed_client.get("/voices").status_code == 200  # the rest keeps serving


# ------------------------------------------------------------------------------------ error shape
def test_framework_errors_use_the_error_shape(loading_client: TestClient) -> None:
    assert_error_shape(loading_client.get("/no/such/route"), 404, "not_found")
    response = loading_client.get("/tts")
    assert_error_shape(response, 405, "method_not_allowed")
    assert "POST" in response.headers.get("allow", "")
    assert_error_shape(
        loading_client.post("/tts", content=b'{"text": "x", ', headers={"content-type": "application/json"}),
        400,
        "invalid_json",
    )
    assert_error_shape(loading_client.post("/tts"), 422, "validation_error")  # no body at all


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"ref_name": "v1"}, "text"),
        ({"text": "", "ref_name": "v1"}, "text"),
        ({"text": "   \n\t", "ref_name": "v1"}, "text"),
        ({"text": 42, "ref_name": "v1"}, "text"),
        ({"text": "xin chào"}, "ref_name"),
        ({"text": "xin chào", "ref_name": ""}, "ref_name"),
        ({"text": "xin chào", "ref_name": "v1", "speed": 0}, "speed"),
        ({"text": "xin chào", "ref_name": "v1", "speed": 2.5}, "speed"),
        ({"text": "xin chào", "ref_name": "v1", "speed": -1}, "speed"),
        ({"text": "xin chào", "ref_name": "v1", "speed": "fast"}, "speed"),
        ({"text": "xin chào", "ref_name": "v1", "nfe_step": 0}, "nfe_step"),
        ({"text": "xin chào", "ref_name": "v1", "nfe_step": 1000}, "nfe_step"),
        ({"text": "xin chào", "ref_name": "v1", "seed": -5}, "seed"),
        ({"text": "xin chào", "ref_name": "v1", "format": "exe"}, "format"),
        ({"text": "xin chào", "ref_name": "v1", "job_id": "../../etc/passwd"}, "job_id"),
        ({"text": "xin chào", "ref_name": "v1", "job_id": "x" * 200}, "job_id"),
        ({"text": "xin chào", "ref_name": "v1", "job_id": ""}, "job_id"),
    ],
)
def test_invalid_submissions_are_422_with_the_field(
    loading_client: TestClient, payload: dict[str, Any], field: str
) -> None:
    body = assert_error_shape(loading_client.post("/tts", json=payload), 422, "validation_error")
    assert [d["field"] for d in body["error"]["details"]] == [field]
    assert field in body["error"]["message"]


def test_a_json_array_is_not_a_request(loading_client: TestClient) -> None:
    assert_error_shape(loading_client.post("/tts", json=["text"]), 422, "validation_error")


def test_overlong_text_is_422(loading_client: TestClient) -> None:
    body = assert_error_shape(
        loading_client.post("/tts", json={"text": "a" * 501, "ref_name": "v1"}), 422, "invalid_text"
    )
    assert "500" in body["error"]["message"]


def test_oversize_bodies_are_413_json(loading_client: TestClient) -> None:
    big = b'{"text": "' + b"a" * 100_000 + b'", "ref_name": "v1"}'
    assert_error_shape(
        loading_client.post("/tts", content=big, headers={"content-type": "application/json"}),
        413,
        "payload_too_large",
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        yield b'{"text": "'
        for _ in range(20):
            yield b"a" * 10_000
        yield b'", "ref_name": "v1"}'

    assert_error_shape(
        loading_client.post("/tts", content=chunks(), headers={"content-type": "application/json"}),
        413,
        "payload_too_large",
    )
    assert loading_client.get("/health").status_code == 503  # still serving


@pytest.mark.parametrize(
    ("ref_name", "status", "code"),
    [
        ("nobody", 404, "voice_not_found"),
        ("../v1", 400, "invalid_voice_name"),
        ("../../etc/passwd", 400, "invalid_voice_name"),
        ("/etc/passwd", 400, "invalid_voice_name"),
        ("sample/../../v1.wav", 400, "invalid_voice_name"),
        ("..%2Fv1", 400, "invalid_voice_name"),
        ("v1\x00.wav", 400, "invalid_voice_name"),
    ],
)
def test_bad_voices(loading_client: TestClient, ref_name: str, status: int, code: str) -> None:
    assert_error_shape(
        loading_client.post("/tts", json={"text": "xin chào", "ref_name": ref_name}), status, code
    )


def test_unknown_jobs_are_404_everywhere(loading_client: TestClient) -> None:
    for response in (
        loading_client.get("/tts/progress/job_doesnotexist"),
        loading_client.get("/tts/progress/..%2F..%2Fetc"),
        loading_client.post("/tts/kill/job_doesnotexist"),
        loading_client.get("/check-download/job_doesnotexist"),
        loading_client.post("/confirm-download/job_doesnotexist?token=x"),
    ):
        assert_error_shape(response, 404)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/output/..%2F..%2Fetc%2Fpasswd", 404),  # decodes to a path: no such route
        ("/output/%2e%2e", 400),
        ("/output/.hidden.wav", 400),
        ("/output/job_x_00000000.wav%00.txt", 400),
        ("/output/jobs.sqlite3", 400),
        ("/output/job_x_00000000.wav", 404),  # well-formed but not an output of any job
    ],
)
def test_output_names_never_leave_the_output_dir(loading_client: TestClient, path: str, status: int) -> None:
    response = loading_client.get(path)
    assert_error_shape(response, status)


def test_a_dot_dot_output_path_is_the_root_page(loading_client: TestClient) -> None:
    # The client resolves "/output/.." to "/" before sending it: the playground redirect, no file.
    response = loading_client.get("/output/..", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/ui/"


# ------------------------------------------------------------------------------------ queued jobs
def test_queued_job_progress_kill_and_confirm(loading_client: TestClient) -> None:
    response = loading_client.post(
        "/tts", json={"text": "xin chào", "ref_name": "sample/v1.wav", "job_id": "c-1"}
    )
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["job_id"] == "c-1" and accepted["state"] == "queued" and accepted["status"] == "pending"
    assert accepted["sample_used"] == "v1" and accepted["replayed"] is False
    assert accepted["text_ref"].startswith("xin chào")
    assert "/output/" + accepted["filename"] + "?token=" in accepted["wav_url"]
    assert "?token=" in accepted["confirmation_url"]
    assert accepted["progress_url"].endswith("/tts/progress/c-1")

    again = loading_client.post("/tts", json={"text": "xin chào", "ref_name": "v1", "job_id": "c-1"})
    assert again.status_code == 202 and again.json()["replayed"] is True
    assert_error_shape(
        loading_client.post("/tts", json={"text": "other", "ref_name": "v1", "job_id": "c-1"}),
        409,
        "job_conflict",
    )

    progress = loading_client.get("/tts/progress/c-1").json()
    assert progress["state"] == "queued" and progress["queue_position"] == 0 and progress["progress"] == 0

    token = accepted["confirmation_url"].split("token=")[1]
    assert_error_shape(
        loading_client.post("/confirm-download/c-1?token=wrong"), 403, "invalid_confirmation_token"
    )
    assert_error_shape(loading_client.post("/confirm-download/c-1"), 403, "invalid_confirmation_token")
    assert_error_shape(loading_client.post(f"/confirm-download/c-1?token={token}"), 409, "job_not_succeeded")
    check = loading_client.get("/check-download/c-1").json()
    assert check == {"confirmed": False, "job_id": "c-1", "timestamp": None, "state": "queued"}

    assert_error_shape(loading_client.get("/output/" + accepted["filename"]), 404, "output_not_ready")

    killed = loading_client.post("/tts/kill/c-1")
    assert killed.status_code == 200
    assert killed.json()["status"] == "cancelled" and killed.json()["job"]["state"] == "cancelled"
    assert_error_shape(loading_client.post("/tts/kill/c-1"), 409, "job_finished")
    final = loading_client.get("/tts/progress/c-1").json()
    assert final["status"] == "cancelled" and final["error"]["code"] == "cancelled"


def test_full_queue_is_429_with_retry_after(loading_client: TestClient) -> None:
    for i in range(4):
        assert loading_client.post("/tts", json={"text": f"câu {i}", "ref_name": "v1"}).status_code == 202
    response = loading_client.post("/tts", json={"text": "một câu nữa", "ref_name": "v1"})
    assert_error_shape(response, 429, "queue_full")
    assert int(response.headers["retry-after"]) >= 1
    assert loading_client.get("/status").json()["queue_depth"] == 4


# ------------------------------------------------------------------------------------ voices
def test_voice_upload_list_get_delete(loading_client: TestClient) -> None:
    files = {"file": ("my voice.flac", wav_bytes(fmt="FLAC"), "audio/flac")}
    response = loading_client.post(
        "/voices", files=files, data={"voice_id": "new_1", "transcript": "xin chào"}
    )
    assert response.status_code == 201, response.text
    info = response.json()
    assert info["id"] == "new_1" and info["has_transcript"] and info["path"] == "voices/new_1.wav"
    listing = loading_client.get("/voices").json()
    assert {v["id"] for v in listing["voices"]} == {"v1", "new_1"} and listing["count"] == 2
    assert listing["sample_dir"] == "voices"
    assert loading_client.get("/voices/new_1").json()["transcript"] == "xin chào"
    dup = loading_client.post("/voices", files=files, data={"voice_id": "new_1", "transcript": "xin chào"})
    assert_error_shape(dup, 409, "voice_exists")
    assert loading_client.delete("/voices/new_1").json() == {"status": "deleted", "id": "new_1"}
    assert_error_shape(loading_client.get("/voices/new_1"), 404, "voice_not_found")
    assert_error_shape(loading_client.delete("/voices/new_1"), 404, "voice_not_found")


def test_bad_voice_uploads(loading_client: TestClient) -> None:
    audio = wav_bytes()
    cases = [
        (
            {"file": ("x.wav", b"this is not audio at all" * 50, "audio/wav")},
            {"voice_id": "x", "transcript": "a"},
            422,
        ),
        ({"file": ("x.wav", audio, "audio/wav")}, {"voice_id": "../evil", "transcript": "a"}, 400),
        ({"file": ("x.wav", audio, "audio/wav")}, {"voice_id": "a/b", "transcript": "a"}, 400),
        ({"file": ("../../evil.wav", audio, "audio/wav")}, {"transcript": "a"}, 400),
        ({"file": ("/etc/evil.wav", audio, "audio/wav")}, {"transcript": "a"}, 400),
        ({"file": ("x.wav", b"", "audio/wav")}, {"voice_id": "empty", "transcript": "a"}, 422),
        ({"file": ("big.wav", b"\0" * 250_000, "audio/wav")}, {"voice_id": "big", "transcript": "a"}, 413),
        ({}, {"voice_id": "nofile", "transcript": "a"}, 422),
    ]
    for files, data, status in cases:
        assert_error_shape(loading_client.post("/voices", files=files or None, data=data), status)
    too_big = b"\0" * 500_000  # over max_request_bytes: refused before parsing
    assert_error_shape(
        loading_client.post(
            "/voices", files={"file": ("b.wav", too_big, "audio/wav")}, data={"voice_id": "b"}
        ),
        413,
        "payload_too_large",
    )
    assert [v["id"] for v in loading_client.get("/voices").json()["voices"]] == ["v1"]
    for path in ("/voices/..%2Fv1", "/voices/.v1", "/voices/v1.wav"):
        response = loading_client.get(path)
        assert response.status_code in (400, 404)
        assert_error_shape(response, response.status_code)


# ------------------------------------------------------------------------------------ auth
def test_bearer_auth(tmp_path: Path) -> None:
    release = threading.Event()

    def never_loads(settings: Settings) -> Any:
        release.wait(60)
        raise ModelLoadError("test ended")

    settings = make_settings(tmp_path, api_key="s3cret-key")
    write_voice(settings.voices_dir, "v1")
    try:
        with TestClient(create_app(settings, engine_loader=never_loads)) as client:
            assert client.get("/health").status_code == 503  # open, answers readiness
            assert client.get("/docs").status_code == 200
            for method, path in [
                ("GET", "/status"),
                ("GET", "/voices"),
                ("POST", "/tts"),
                ("GET", "/tts/progress/x"),
                ("POST", "/tts/kill/x"),
                ("GET", "/output/x_00000000.wav"),
                ("POST", "/confirm-download/x"),
                ("GET", "/check-download/x"),
                ("POST", "/cleanup"),
                ("GET", "/no-such-route"),
            ]:
                response = client.request(method, path)
                assert_error_shape(response, 401, "unauthorized")
                assert response.headers["www-authenticate"].startswith("Bearer")
            for header in (
                "Bearer wrong",
                "s3cret-key",
                "Basic czNjcmV0LWtleQ==",
                "Bearer ",
                "Bearer s3cret-ke",
            ):
                assert_error_shape(client.get("/status", headers={"Authorization": header}), 401)
            # unauthenticated junk is refused before it is parsed
            assert_error_shape(client.post("/tts", content=b"{not json"), 401)
            ok = client.get("/status", headers={"Authorization": "Bearer s3cret-key"})
            assert ok.status_code == 200
            assert client.get("/voices", headers={"authorization": "bearer s3cret-key"}).status_code == 200
    finally:
        release.set()


def test_scrub_removes_absolute_paths_only() -> None:
    assert scrub("cannot open /home/app/models/x/model_last.pt: gone") == "cannot open model_last.pt: gone"
    assert scrub("see /tmp/a/b/") == "see <dir>"
    assert scrub("download https://hf.co/a/b/c.pt failed") == "download https://hf.co/a/b/c.pt failed"
    assert scrub("chunk 1/2 and speed 0.3/2.0") == "chunk 1/2 and speed 0.3/2.0"
    assert scrub("voice 'a' not found") == "voice 'a' not found"
