"""The official ``openai`` package against a live f5vi server: every format, streamed and not; the
model listing (``client.models``) and the voice listing (raw httpx: the SDK has no method for it)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest
from openai import OpenAI

from f5vi.api.openai_names import OPENAI_VOICES, SPEECH_MODELS
from realtime_helpers import API_KEY, LONG_TEXT, SHORT_TEXT, VOICE, decode, sse_events, start_server
from server_helpers import LiveServer, assert_error_shape

FORMATS = ("mp3", "opus", "flac", "wav", "pcm", "ogg")
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "ogg": "audio/ogg",
}
# Decoded length may exceed the synthesised one by the MP3 encoder delay and final frame padding.
LENGTH_SLACK = {"mp3": 2 * 1152 + 1105}
# Streamed and one-shot synthesis batch chunks differently; lengths agree to a few frames per chunk.
# A one-chunk text (SHORT_TEXT) is streamed as two parts (its first audio leaves early): one
# cross-fade (0.15 s) more and each part's duration estimated on its own (a few frames).
STREAM_SLACK_SAMPLES = 4 * 256 * 4 + int(0.15 * 24_000) + 8 * 256


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = start_server(tmp_path_factory.mktemp("openai"), tmp_path_factory.getbasetemp())
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[OpenAI]:
    with OpenAI(api_key=API_KEY, base_url=f"{server.base_url}/v1", max_retries=0, timeout=300) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def reference_samples(client: OpenAI) -> int:
    """Length of SHORT_TEXT in samples, from a raw PCM response (whole, not streamed)."""
    response = client.audio.speech.create(
        model="tts-1",
        voice=VOICE,
        input=SHORT_TEXT,
        response_format="pcm",
        extra_body={"seed": 7, "stream": False},
    )
    wave, _ = decode(response.content, "pcm")
    assert len(wave) > 24_000  # more than a second
    return len(wave)


def _check_audio(wave: np.ndarray, sr: int, fmt: str, expected: int, slack: int) -> None:
    assert sr == 24_000, (fmt, sr)
    low, high = expected - slack, expected + slack + LENGTH_SLACK.get(fmt, 0)
    assert low <= len(wave) <= high, (fmt, len(wave), expected)
    assert np.isfinite(wave).all()
    assert float(np.sqrt(np.mean(np.square(wave)))) > 1e-3, f"{fmt}: silent"


@pytest.mark.parametrize("fmt", FORMATS)
def test_sdk_creates_speech_in_every_format(
    client: OpenAI, server: LiveServer, reference_samples: int, fmt: str
) -> None:
    # Not streamed ("stream": false): the whole file in one response with a Content-Length.
    raw = client.audio.speech.with_raw_response.create(
        model="tts-1-hd",
        voice=VOICE,
        input=SHORT_TEXT,
        response_format=fmt,  # type: ignore[arg-type]  # "ogg" is our extension
        extra_body={"seed": 7, "stream": False},
    )
    assert raw.headers["content-type"].startswith(CONTENT_TYPES[fmt])
    assert int(raw.headers["content-length"]) == len(raw.content)
    wave, sr = decode(raw.content, fmt)
    _check_audio(wave, sr, fmt, reference_samples, slack=0)

    # Streamed: iterate the bytes as they come.
    chunks: list[bytes] = []
    with client.audio.speech.with_streaming_response.create(
        model="f5-tts",
        voice=VOICE,
        input=SHORT_TEXT,
        response_format=fmt,  # type: ignore[arg-type]
        speed=0.9,
        extra_body={"stream": True, "seed": 7},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(CONTENT_TYPES[fmt])
        assert "content-length" not in response.headers
        for chunk in response.iter_bytes():
            chunks.append(chunk)
    wave, sr = decode(b"".join(chunks), fmt)
    _check_audio(wave, sr, fmt, reference_samples, slack=STREAM_SLACK_SAMPLES)


@pytest.mark.parametrize("fmt", ("mp3", "opus"))
def test_sdk_stream_of_a_long_text_decodes_whole(client: OpenAI, fmt: str) -> None:
    """Streamed by default (no Content-Length); that the first bytes come before synthesis ends is
    shown with held engine steps in test_openai_speech_streams.py (not with a clock here)."""
    data = bytearray()
    with client.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice=VOICE,
        input=LONG_TEXT,
        response_format=fmt,  # type: ignore[arg-type]
    ) as response:
        assert "content-length" not in response.headers
        for chunk in response.iter_bytes(4096):
            data.extend(chunk)
    wave, sr = decode(bytes(data), fmt)
    assert sr == 24_000 and len(wave) / sr > 20.0


def test_openai_voice_names_and_voice_objects(client: OpenAI, reference_samples: int) -> None:
    for voice in ("alloy", "echo", "nova"):
        response = client.audio.speech.with_raw_response.create(
            model="tts-1",
            voice=voice,
            input=SHORT_TEXT,
            response_format="wav",
            extra_body={"seed": 7, "stream": False},
        )
        assert response.headers["x-f5vi-voice"] == VOICE  # the library's (only) voice
        wave, sr = decode(response.content, "wav")
        _check_audio(wave, sr, "wav", reference_samples, slack=0)
    response = client.audio.speech.with_raw_response.create(
        model="tts-1", voice={"id": VOICE}, input=SHORT_TEXT, response_format="wav"
    )
    assert response.headers["x-f5vi-voice"] == VOICE


def test_sse_stream_format(client: OpenAI, reference_samples: int) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice=VOICE,
        input=SHORT_TEXT,
        response_format="pcm",
        stream_format="sse",
        extra_body={"seed": 7},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(sse_events(response.iter_lines()))
    assert [e["data"]["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1)
    assert events[-1]["data"]["type"] == "speech.audio.done"
    audio = b"".join(base64.b64decode(e["data"]["audio"]) for e in events[:-1])
    wave, sr = decode(audio, "pcm")
    _check_audio(wave, sr, "pcm", reference_samples, slack=STREAM_SLACK_SAMPLES)


def test_errors_reach_the_sdk_as_typed_exceptions(client: OpenAI, server: LiveServer) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as too_fast:
        client.audio.speech.create(model="tts-1", voice=VOICE, input=SHORT_TEXT, speed=3.0)
    assert "speed" in str(too_fast.value) and "0.3" in str(too_fast.value)
    with pytest.raises(openai.UnprocessableEntityError):
        client.audio.speech.create(model="tts-1", voice=VOICE, input=SHORT_TEXT, speed=0.25)
    with pytest.raises(openai.NotFoundError):
        client.audio.speech.create(model="tts-1", voice="no_such_voice", input=SHORT_TEXT)
    with pytest.raises(openai.UnprocessableEntityError):
        client.audio.speech.create(model="tts-1", voice=VOICE, input=SHORT_TEXT, response_format="aac")
    with pytest.raises(openai.UnprocessableEntityError):  # streamed requests fail before any audio too
        client.audio.speech.create(
            model="tts-1", voice=VOICE, input="   ", response_format="mp3", extra_body={"stream": True}
        )
    wrong_key = OpenAI(api_key="wrong", base_url=f"{server.base_url}/v1", max_retries=0)
    with wrong_key, pytest.raises(openai.AuthenticationError):
        wrong_key.audio.speech.create(model="tts-1", voice=VOICE, input=SHORT_TEXT)


def test_error_bodies_use_the_api_error_shape(server: LiveServer) -> None:
    url = "/v1/audio/speech"
    base = {"model": "tts-1", "input": SHORT_TEXT, "voice": VOICE}
    body = assert_error_shape(server.client.post(url, json={**base, "speed": 4.0}), 422, "validation_error")
    assert "between 0.3 and 2.0" in body["error"]["message"]
    aac = server.client.post(url, json={**base, "response_format": "aac"})
    assert_error_shape(aac, 422, "unsupported_format")
    assert_error_shape(server.client.post(url, json={**base, "voice": "nobody"}), 404, "voice_not_found")
    assert_error_shape(server.client.post(url, json={**base, "voice": "../etc"}), 400)
    no_key = httpx.post(server.base_url + url, json=base, timeout=30)
    assert_error_shape(no_key, 401, "unauthorized")


# --------------------------------------------------------------------- GET /v1/models, /v1/audio/voices


def test_sdk_lists_the_models_speech_accepts(client: OpenAI, server: LiveServer) -> None:
    models = client.models.list()
    ids = [m.id for m in models]
    assert ids == list(SPEECH_MODELS) and {"tts-1", "tts-1-hd", "f5-tts"} <= set(ids)
    assert all(m.object == "model" and m.owned_by == "f5vi" for m in models)
    assert all(isinstance(m.created, int) and m.created > 1_600_000_000 for m in models)
    raw = server.client.get("/v1/models").json()
    assert raw["object"] == "list" and set(raw) == {"object", "data"}
    assert set(raw["data"][0]) == {"id", "object", "created", "owned_by", "vocoder"}
    assert {m["vocoder"] for m in raw["data"]} == {"vocos"}  # f5vi's extension: the loaded vocoder
    # every listed id is a model name the speech endpoint takes
    audio = client.audio.speech.create(model=ids[-1], voice=VOICE, input=SHORT_TEXT, response_format="pcm")
    assert len(audio.content) > 24_000


def test_sdk_retrieves_a_model_and_gets_404_for_others(client: OpenAI, server: LiveServer) -> None:
    model = client.models.retrieve("tts-1-hd")
    assert model.id == "tts-1-hd" and model.object == "model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("whisper-1")
    assert_error_shape(server.client.get("/v1/models/whisper-1"), 404, "model_not_found")


def test_voices_list_library_voices_then_openai_names(server: LiveServer) -> None:
    response = server.client.get("/v1/audio/voices")
    assert response.status_code == 200
    voices = response.json()["voices"]
    assert voices[0] == {
        "id": VOICE,
        "name": VOICE,
        "voice": VOICE,
        "openai_alias": False,
        "description": None,
    }
    aliases = voices[1:]
    assert [v["id"] for v in aliases] == sorted(OPENAI_VOICES)
    for alias in aliases:
        assert alias["voice"] == VOICE and alias["openai_alias"]
        assert alias["name"] == f"{alias['id']} ({VOICE})"
    # what the list says an alias speaks with is what speech uses
    speech = server.client.post(
        "/v1/audio/speech", json={"input": SHORT_TEXT, "voice": "shimmer", "response_format": "pcm"}
    )
    assert speech.status_code == 200 and speech.headers["x-f5vi-voice"] == VOICE


def test_listings_need_the_api_key(server: LiveServer) -> None:
    for path in ("/v1/models", "/v1/models/tts-1", "/v1/audio/voices"):
        assert_error_shape(httpx.get(server.base_url + path, timeout=30), 401, "unauthorized")
