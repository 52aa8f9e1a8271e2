"""``WS /tts/stream`` against a live server: framed PCM in order, clean close, errors as frames."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from realtime_helpers import API_KEY, LONG_TEXT, SHORT_TEXT, VOICE, start_server
from server_helpers import LiveServer

HEADER = struct.Struct("<4sIII")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = start_server(tmp_path_factory.mktemp("ws"), tmp_path_factory.getbasetemp())
    yield srv
    srv.close()


def _connect(server: LiveServer, **kwargs: Any) -> ClientConnection:
    url = server.base_url.replace("http://", "ws://") + "/tts/stream"
    kwargs.setdefault("additional_headers", {"Authorization": f"Bearer {API_KEY}"})
    return connect(url, proxy=None, open_timeout=30, close_timeout=10, **kwargs)


def _json(ws: ClientConnection, timeout: float = 120.0) -> dict[str, Any]:
    message = ws.recv(timeout=timeout)
    assert isinstance(message, str), f"expected a JSON text frame, got {len(message)} binary bytes"
    return json.loads(message)


def _read_request(ws: ClientConnection) -> tuple[dict[str, Any], list[dict[str, Any]], bytes, dict[str, Any]]:
    """start, chunk metadata, joined PCM and done of the next request (asserting the framing)."""
    start = _json(ws)
    assert start["type"] == "start", start
    seq = start["seq"]
    chunks: list[dict[str, Any]] = []
    pcm = bytearray()
    while True:
        frame = _json(ws)
        if frame["type"] == "done":
            return start, chunks, bytes(pcm), frame
        assert frame["type"] == "chunk", frame
        assert frame["seq"] == seq and frame["index"] == len(chunks), (frame, len(chunks))
        assert frame["offset_samples"] == len(pcm) // 2
        binary = ws.recv(timeout=60)
        assert isinstance(binary, bytes), "a chunk frame must be followed by one binary frame"
        assert len(binary) == frame["bytes"]
        magic, bseq, index, samples = HEADER.unpack_from(binary)
        assert (magic, bseq, index, samples) == (b"F5PC", seq, frame["index"], frame["samples"])
        assert len(binary) - HEADER.size == 2 * samples
        pcm.extend(binary[HEADER.size :])
        chunks.append(frame)


def test_two_messages_framed_chunks_in_order_and_clean_close(server: LiveServer) -> None:
    with _connect(server, subprotocols=["f5vi.tts.v1"]) as ws:
        assert ws.subprotocol == "f5vi.tts.v1"
        ready = _json(ws)
        assert ready["type"] == "ready" and ready["sample_rate"] == 24_000
        assert ready["encoding"] == "pcm_s16le"
        ws.send(json.dumps({"type": "speak", "id": "first", "text": LONG_TEXT, "voice": VOICE, "seed": 1}))
        ws.send(json.dumps({"id": "second", "text": SHORT_TEXT, "voice": VOICE}))  # "type" may be omitted

        start1, chunks1, pcm1, done1 = _read_request(ws)
        start2, chunks2, pcm2, done2 = _read_request(ws)
        assert (start1["id"], start1["seq"], start2["id"], start2["seq"]) == ("first", 1, "second", 2)
        assert start1["voice"] == VOICE and start1["sample_rate"] == 24_000
        assert done1["id"] == "first" and done2["id"] == "second"
        for chunks, pcm, done in ((chunks1, pcm1, done1), (chunks2, pcm2, done2)):
            assert done["chunks"] == len(chunks) >= 2
            assert done["samples"] == len(pcm) // 2
            assert done["duration_seconds"] == pytest.approx(len(pcm) / 2 / 24_000, abs=1e-3)
            assert all(c["samples"] <= 24_000 for c in chunks)  # <= 1 s per binary frame
            wave = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
            assert float(np.sqrt(np.mean(wave**2))) > 1e-3
        assert len(pcm1) / 2 / 24_000 > 20.0 > len(pcm2) / 2 / 24_000
        assert done1["first_chunk_seconds"] < 0.5 * done1["elapsed_seconds"]
        ws.close(code=1000, reason="bye")
    assert ws.close_code == 1000
    assert "Traceback" not in server.log_tail(200)


def test_bad_frames_get_error_frames_and_the_connection_stays_usable(server: LiveServer) -> None:
    with _connect(server) as ws:
        assert _json(ws)["type"] == "ready"
        bad: list[tuple[str | bytes, str]] = [
            ("this is not json", "invalid_json"),
            ("[1, 2, 3]", "invalid_message"),
            (b"\x00\x01binary", "invalid_message"),
            (json.dumps({"type": "dance"}), "invalid_message"),
            (json.dumps({"text": "Xin chào."}), "validation_error"),  # no voice
            (json.dumps({"text": "   ", "voice": VOICE}), "invalid_text"),
            (json.dumps({"text": "Xin chào.", "voice": VOICE, "speed": 9}), "validation_error"),
            # Typed strictly, like the HTTP bodies (issue 12): no "8" for 8, no true for 1.
            (json.dumps({"text": "Xin chào.", "voice": VOICE, "nfe_step": "8"}), "validation_error"),
            (json.dumps({"text": "Xin chào.", "voice": VOICE, "seed": False}), "validation_error"),
            (json.dumps({"text": "Xin chào.", "voice": VOICE, "speed": True}), "validation_error"),
        ]
        for message, code in bad:
            ws.send(message)
            frame = _json(ws, timeout=30)
            assert frame["type"] == "error" and frame["code"] == code, (message, frame)
            assert frame["message"]
        # Errors found when the request runs come with its id and seq.
        ws.send(json.dumps({"id": "ghost", "text": "Xin chào.", "voice": "no_such_voice"}))
        frame = _json(ws)
        got = (frame["type"], frame["code"], frame["id"], frame["seq"])
        assert got == ("error", "voice_not_found", "ghost", 1)
        ws.send(json.dumps({"type": "ping", "id": "p"}))
        assert _json(ws) == {"type": "pong", "id": "p"}
        # Still usable.
        ws.send(json.dumps({"id": "ok", "text": SHORT_TEXT, "voice": VOICE}))
        start, _, pcm, done = _read_request(ws)
        assert start["id"] == "ok" and start["seq"] == 2 and done["samples"] == len(pcm) // 2 > 24_000
    assert ws.close_code == 1000


def test_cancel_stops_the_running_request(server: LiveServer) -> None:
    with _connect(server) as ws:
        assert _json(ws)["type"] == "ready"
        long_text = LONG_TEXT + " " + LONG_TEXT
        ws.send(json.dumps({"id": "long", "text": long_text, "voice": VOICE, "nfe_step": 8}))
        ws.send(json.dumps({"id": "queued", "text": SHORT_TEXT, "voice": VOICE}))
        assert _json(ws)["type"] == "start"
        assert _json(ws)["type"] == "chunk"
        ws.send(json.dumps({"type": "cancel"}))
        frames: list[dict[str, Any]] = []
        while len([f for f in frames if f.get("type") == "error"]) < 2:
            message = ws.recv(timeout=30)
            if isinstance(message, str):
                frames.append(json.loads(message))
        errors = {f["id"]: f["code"] for f in frames if f["type"] == "error"}
        assert errors == {"long": "cancelled", "queued": "cancelled"}
        assert not [f for f in frames if f["type"] == "done"]
        ws.send(json.dumps({"id": "after", "text": SHORT_TEXT, "voice": VOICE}))
        start, _, pcm, done = _read_request(ws)
        assert start["id"] == "after" and done["samples"] == len(pcm) // 2


def test_websocket_needs_the_api_key(server: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        _connect(server, additional_headers={})
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["error"]["code"] == "unauthorized"
    with pytest.raises(InvalidStatus):
        _connect(server, additional_headers={"Authorization": "Bearer wrong"})
    # Browsers cannot set headers: the key may come as a subprotocol next to the protocol name.
    with _connect(server, additional_headers={}, subprotocols=["f5vi.tts.v1", f"bearer.{API_KEY}"]) as ws:
        assert ws.subprotocol == "f5vi.tts.v1"
        assert _json(ws)["type"] == "ready"
