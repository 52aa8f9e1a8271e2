"""Bad input against a real server started the way `make serve` starts it (`python -m f5vi serve
--demo-fallback`, configured model unavailable offline -> demo model): every bad request gets the
documented 4xx error shape, nothing is lost or corrupted, and the server keeps serving."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from server_helpers import LiveServer, assert_error_shape, poll_until, server_env, wav_bytes, write_voice


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("badinput")
    write_voice(root / "voices", "v1")
    (root / "output").mkdir()
    (root / "secret.txt").write_text("do not serve me")
    env = server_env(root, None, max_text_chars=300, max_upload_bytes=300_000, max_request_bytes=600_000)
    env["F5VI_MODEL"] = "hynt/F5-TTS-Vietnamese-ViVoice"  # not cached, hub offline: cannot load
    with LiveServer(root, env, demo_fallback=True, use_cli=True) as live:
        live.start(ready_timeout=180)
        yield live


def test_demo_fallback_is_loud(server: LiveServer) -> None:
    body = server.client.get("/health").json()
    assert body["ready"] and body["is_demo"] is True
    log = server.log_tail(400)
    assert "falling back to the DEMO model" in log and "DEMO MODEL LOADED" in log
    assert (server.root / "demo" / "DEMO_MODEL").is_file()


def post_raw(server: LiveServer, body: bytes, content_type: str = "application/json") -> Any:
    return server.client.post("/tts", content=body, headers={"content-type": content_type})


def test_malformed_and_invalid_json(server: LiveServer) -> None:
    assert_error_shape(post_raw(server, b'{"text": "xin'), 400, "invalid_json")
    assert_error_shape(post_raw(server, b"\xff\xfe garbage"), 400, "invalid_json")
    assert_error_shape(post_raw(server, b""), 422, "validation_error")
    assert_error_shape(post_raw(server, b"[]"), 422, "validation_error")
    assert_error_shape(post_raw(server, b'"text"'), 422, "validation_error")
    assert_error_shape(post_raw(server, b"text=x&ref_name=v1", "application/x-www-form-urlencoded"), 422)


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"ref_name": "v1"}, 422, "validation_error"),  # missing text
        ({"text": "", "ref_name": "v1"}, 422, "validation_error"),
        ({"text": "  ", "ref_name": "v1"}, 422, "validation_error"),
        ({"text": "a" * 301, "ref_name": "v1"}, 422, "invalid_text"),  # over F5VI_MAX_TEXT_CHARS
        ({"text": None, "ref_name": "v1"}, 422, "validation_error"),
        ({"text": ["x"], "ref_name": "v1"}, 422, "validation_error"),
        ({"text": "xin chào", "ref_name": "nobody"}, 404, "voice_not_found"),
        ({"text": "xin chào", "ref_name": "../voices/v1"}, 400, "invalid_voice_name"),
        ({"text": "xin chào", "ref_name": "../../../../etc/passwd"}, 400, "invalid_voice_name"),
        ({"text": "xin chào", "ref_name": "/etc/passwd"}, 400, "invalid_voice_name"),
        ({"text": "xin chào", "ref_name": "sample/../../secret.txt"}, 400, "invalid_voice_name"),
        ({"text": "xin chào", "ref_name": "..\\..\\secret"}, 400, "invalid_voice_name"),
        ({"text": "xin chào", "ref_name": "v1", "speed": 0.1}, 422, "validation_error"),
        ({"text": "xin chào", "ref_name": "v1", "speed": 5}, 422, "validation_error"),
        ({"text": "xin chào", "ref_name": "v1", "speed": 0}, 422, "validation_error"),
        ({"text": "xin chào", "ref_name": "v1", "speed": "nhanh"}, 422, "validation_error"),
        ({"text": "xin chào", "ref_name": "v1", "job_id": "../x"}, 422, "validation_error"),
        ({"text": "xin chào", "ref_name": "v1", "format": "../wav"}, 422, "validation_error"),
    ],
)
def test_bad_tts_requests(server: LiveServer, payload: dict[str, Any], status: int, code: str) -> None:
    assert_error_shape(server.client.post("/tts", json=payload), status, code)


def test_oversize_body(server: LiveServer) -> None:
    big = b'{"text": "' + b"a" * 200_000 + b'", "ref_name": "v1"}'
    assert_error_shape(post_raw(server, big), 413, "payload_too_large")
    upload = b"\0" * 700_000
    assert_error_shape(
        server.client.post("/voices", files={"file": ("x.wav", upload, "audio/wav")}, data={"voice_id": "x"}),
        413,
        "payload_too_large",
    )


def test_bad_output_names(server: LiveServer) -> None:
    for path, status in [
        ("/output/..%2Fsecret.txt", 404),
        ("/output/%2e%2e%2fsecret.txt", 404),
        ("/output/secret.txt", 404),  # safe-looking, but no job owns it
        ("/output/.partial-x-y.wav", 400),
        ("/output/%2e%2e", 400),
        ("/output/a%00.wav", 400),
    ]:
        response = server.client.get(path)
        assert_error_shape(response, status)
        assert b"do not serve me" not in response.content
    # httpx resolves "/output/.." to "/" before sending it: the redirect to the playground, no file
    root = server.client.get("/output/..")
    assert root.status_code == 307 and root.headers["location"] == "/ui/"
    assert b"do not serve me" not in root.content


def raw_get(server: LiveServer, raw_path: str) -> bytes:
    """A request line exactly as written (clients would normalise '../')."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"GET {raw_path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def test_unnormalised_traversal_in_the_request_line(server: LiveServer) -> None:
    for raw in ("/output/../secret.txt", "/output/../../../../etc/passwd", "/output/..%2f..%2fsecret.txt"):
        reply = raw_get(server, raw)
        status_line = reply.split(b"\r\n", 1)[0]
        assert b" 404 " in status_line or b" 400 " in status_line, reply[:300]
        assert b"do not serve me" not in reply and b"root:" not in reply
        assert b'{"error":' in reply


def test_bad_uploads(server: LiveServer) -> None:
    audio = wav_bytes()
    for files, data, status in [
        (
            {"file": ("notes.wav", b"plain text, not audio " * 100, "audio/wav")},
            {"voice_id": "t1", "transcript": "a"},
            422,
        ),
        (
            {"file": ("img.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 500, "image/png")},
            {"voice_id": "t2", "transcript": "a"},
            422,
        ),
        ({"file": ("ok.wav", audio, "audio/wav")}, {"voice_id": "../../x", "transcript": "a"}, 400),
        ({"file": ("ok.wav", audio, "audio/wav")}, {"voice_id": "..", "transcript": "a"}, 400),
        ({"file": ("../../../tmp/evil.wav", audio, "audio/wav")}, {"transcript": "a"}, 400),
        ({"file": ("..\\evil.wav", audio, "audio/wav")}, {"transcript": "a"}, 400),
        ({"file": ("ok.wav", b"\0" * 400_000, "audio/wav")}, {"voice_id": "big", "transcript": "a"}, 413),
    ]:
        response = server.client.post("/voices", files=files, data=data)
        assert_error_shape(response, status, forbidden=(str(server.root),))
    names = sorted(p.name for p in (server.root / "voices").iterdir())
    assert names == ["v1.txt", "v1.wav"], names  # nothing written, nothing outside either
    assert not (server.root / "evil.wav").exists() and not (server.root.parent / "evil.wav").exists()


def test_good_upload_then_synthesis_with_it(server: LiveServer) -> None:
    response = server.client.post(
        "/voices",
        files={"file": ("giong_moi.mp3", wav_bytes(fmt="MP3"), "audio/mpeg")},
        data={"transcript": "xin chào các bạn, hôm nay trời đẹp quá."},
    )
    assert response.status_code == 201, response.text
    assert response.json()["id"] == "giong_moi"
    accepted = server.client.post(
        "/tts", json={"text": "Giọng mới.", "ref_name": "giong_moi.wav", "nfe_step": 8}
    )
    assert accepted.status_code == 202, accepted.text


def test_server_keeps_serving_after_all_that(server: LiveServer) -> None:
    accepted = server.client.post(
        "/tts", json={"text": "Vẫn hoạt động tốt.", "ref_name": "sample/v1.wav", "nfe_step": 8}
    )
    assert accepted.status_code == 202
    job_id = accepted.json()["job_id"]
    final, _ = poll_until(
        lambda: server.client.get(f"/tts/progress/{job_id}").json(),
        lambda v: v["state"] in ("succeeded", "failed", "cancelled"),
        timeout=60,
    )
    assert final["state"] == "succeeded", final
    assert server.client.get(final["result"]["wav_url"]).status_code == 200
    status = server.client.get("/status").json()
    assert status["jobs"]["failed"] == 0  # no bad request turned into a broken job
    assert server.proc is not None and server.proc.poll() is None
