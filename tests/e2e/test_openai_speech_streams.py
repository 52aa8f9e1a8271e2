"""Unmodified OpenAI code streams: ``with_streaming_response`` gets its first bytes while the later
chunks of a multi-chunk text are still to be synthesised, and MP3 has one bitrate either way.

The server runs in-process (``paced_server``) so the test can hold the engine's ODE steps: the
first ODE step after the first chunk's is held until the client has read its first bytes. If the
route only answered after synthesis, those bytes could not exist while the step is held.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from paced_server import StepGate, paced_server
from realtime_helpers import API_KEY, LONG_TEXT, SHORT_TEXT, VOICE, decode

NFE = 4


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> StepGate:
    return StepGate(monkeypatch)


@pytest.fixture
def server(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, gate: StepGate
) -> Iterator[httpx.Client]:
    with paced_server(tmp_path, tmp_path_factory.getbasetemp(), nfe_step=NFE) as client:
        yield client


def test_streaming_response_gets_bytes_before_synthesis_ends(server: httpx.Client, gate: StepGate) -> None:
    plan = server.post("/normalize", json={"text": LONG_TEXT, "ref_name": VOICE}).json()
    assert plan["chunk_count"] >= 3, plan["chunk_count"]  # a multi-chunk text
    gate.hold_at(NFE + 1)  # the first step after the first chunk's ODE (that chunk runs alone)
    sdk = OpenAI(api_key=API_KEY, base_url=f"{server.base_url}/v1", max_retries=0, timeout=300)
    with (
        sdk,
        sdk.audio.speech.with_streaming_response.create(
            model="tts-1",
            voice=VOICE,
            input=LONG_TEXT,
            response_format="mp3",  # no stream flag: the default
        ) as response,
    ):
        assert response.status_code == 200 and "content-length" not in response.headers
        chunks = response.iter_bytes()
        first = next(chunks)
        # The first bytes are here while the later chunks' synthesis is held at its first step.
        assert first and gate.holding.is_set() and not gate.released_by_timeout
        assert gate.steps == NFE + 1
        gate.release()
        data = first + b"".join(chunks)
    assert not gate.released_by_timeout
    assert gate.steps >= NFE * plan["chunk_count"] // 2  # the rest ran after the first bytes (batched)
    wave, sr = decode(data, "mp3")
    assert sr == 24_000 and len(wave) / sr > 0.8 * plan["estimated_duration_seconds"]


def _mp3_bitrates(data: bytes) -> set[int]:
    """kbit/s of every MPEG-2 layer III frame (24 kHz) in ``data``, walking frame by frame."""
    kbps_table = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0)
    rates, pos = set(), 0
    while pos + 4 <= len(data):
        header = data[pos : pos + 4]
        assert header[0] == 0xFF and header[1] & 0xE0 == 0xE0, f"no frame at byte {pos}"
        kbps = kbps_table[header[2] >> 4]
        rates.add(kbps)
        pos += 72 * kbps * 1000 // 24_000 + ((header[2] >> 1) & 1)
    return rates


def test_mp3_has_the_same_bitrate_streamed_and_whole(server: httpx.Client) -> None:
    body = {"model": "tts-1", "voice": VOICE, "input": SHORT_TEXT, "response_format": "mp3", "seed": 3}
    whole = server.post("/v1/audio/speech", json={**body, "stream": False})
    assert whole.status_code == 200 and int(whole.headers["content-length"]) == len(whole.content)
    streamed = server.post("/v1/audio/speech", json=body)  # the default: streamed
    assert streamed.status_code == 200 and "content-length" not in streamed.headers
    assert _mp3_bitrates(whole.content) == _mp3_bitrates(streamed.content) == {80}


def test_flac_is_whole_by_default(server: httpx.Client) -> None:
    body = {"model": "tts-1", "voice": VOICE, "input": SHORT_TEXT, "response_format": "flac"}
    response = server.post("/v1/audio/speech", json=body)
    assert response.status_code == 200 and int(response.headers["content-length"]) == len(response.content)
    assert decode(response.content, "flac")[1] == 24_000
