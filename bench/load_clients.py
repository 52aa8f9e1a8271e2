"""The clients of ``python -m bench.load``: a fixed request schedule and one coroutine per front door.

Every request of a run comes from one global schedule (:func:`schedule`), so the work is the same
whichever server setting runs it, and a run with ``N`` clients x ``R`` requests does the first
``N x R`` requests of it (client ``i`` takes requests ``i, i + N, i + 2N, ...``). Request ``g`` uses

* front door ``KINDS[g % 4]``: a job (``POST /tts``, its SSE progress until done, then the WAV
  download), a WebSocket stream (``WS /tts/stream``), a job again, an OpenAI speech stream
  (``POST /v1/audio/speech`` with ``stream: true``, raw PCM): half jobs, half streams;
* text ``MIX[g % 3]``: two short (one sentence, one chunk) to one medium (a paragraph, three chunks);
* voice ``voices[g % len(voices)]`` and seed ``SEED_BASE + g``.

In RunPod mode every request is a RunPod job (``POST /runsync`` on the SDK's local API, then the
download from the worker's own HTTP app): RunPod has no streaming front door here.

Latency is measured in the client from the first byte it sends (connect included) to the last byte
of audio received; first audio, for streams, from the same start to the first audio bytes. Audio
seconds are counted from what arrived (WAV frames, PCM bytes, WebSocket frame headers), not from
what the server says.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx
import soundfile as sf

from bench.texts import PARAGRAPH, SENTENCE

SAMPLE_RATE = 24_000
KINDS = ("job", "ws", "job", "speech")
MIX = (("sentence", SENTENCE), ("sentence", SENTENCE), ("paragraph", PARAGRAPH))
SEED_BASE = 1000
WS_PROTOCOL = "f5vi.tts.v1"
WS_HEADER = struct.Struct("<4sIII")


@dataclass(frozen=True)
class Planned:
    """One request of the schedule."""

    index: int
    kind: str
    text_id: str
    text: str
    voice: str
    seed: int


@dataclass
class Outcome:
    """What one request did (times in seconds from its own start)."""

    index: int
    client: int
    kind: str
    text_id: str
    voice: str
    seed: int
    started: float = 0.0
    """``time.perf_counter()`` at its start (to place it in the run)."""
    latency_s: float | None = None
    first_audio_s: float | None = None
    audio_s: float = 0.0
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def schedule(count: int, voices: list[str], *, runpod: bool = False) -> list[Planned]:
    """The first ``count`` requests of the fixed schedule (see the module docstring)."""
    planned = []
    for g in range(count):
        text_id, text = MIX[g % len(MIX)]
        kind = "runpod" if runpod else KINDS[g % len(KINDS)]
        planned.append(Planned(g, kind, text_id, text, voices[g % len(voices)], SEED_BASE + g))
    return planned


def assign(planned: list[Planned], clients: int) -> list[list[Planned]]:
    """Client ``i`` gets requests ``i, i + clients, ...`` (so every level starts with the same ones)."""
    return [planned[i::clients] for i in range(clients)]


@dataclass(frozen=True)
class Target:
    """Where the clients go: the f5vi HTTP app (downloads, streams) and, in RunPod mode, the SDK API."""

    app_url: str
    nfe: int
    runpod_url: str | None = None

    @property
    def ws_url(self) -> str:
        return "ws" + self.app_url.removeprefix("http") + "/tts/stream"


class RequestFailedError(Exception):
    """A request that did not deliver its audio (the message says what came back instead)."""


async def run_request(client: httpx.AsyncClient, target: Target, planned: Planned, outcome: Outcome) -> None:
    """Run ``planned`` and fill ``outcome`` (raises :class:`RequestFailedError` or transport errors)."""
    runner = {"job": _job, "ws": _ws, "speech": _speech, "runpod": _runpod}[planned.kind]
    outcome.started = time.perf_counter()
    await runner(client, target, planned, outcome)
    outcome.latency_s = time.perf_counter() - outcome.started


def _wav_seconds(data: bytes) -> float:
    info = sf.info(io.BytesIO(data))
    if info.samplerate != SAMPLE_RATE:
        raise RequestFailedError(f"download has sample rate {info.samplerate}, expected {SAMPLE_RATE}")
    return info.frames / info.samplerate


def _check(response: httpx.Response, what: str, *ok: int) -> None:
    if response.status_code not in (ok or (200,)):
        raise RequestFailedError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")


async def _download(client: httpx.AsyncClient, url: str) -> bytes:
    response = await client.get(url)
    _check(response, f"GET {url}")
    return response.content


async def _job(client: httpx.AsyncClient, target: Target, planned: Planned, outcome: Outcome) -> None:
    body = {
        "text": planned.text,
        "ref_name": planned.voice,
        "nfe_step": target.nfe,
        "seed": planned.seed,
        "format": "wav",
    }
    response = await client.post(f"{target.app_url}/tts", json=body)
    _check(response, "POST /tts", 202)
    job_id = response.json()["job_id"]
    final = await _wait_for_job(client, target, job_id)
    if final.get("state") != "succeeded":
        raise RequestFailedError(f"job {job_id} ended {final.get('state')}: {final.get('error')}")
    data = await _download(client, urljoin(target.app_url + "/", final["wav_url"]))
    outcome.audio_s = _wav_seconds(data)
    outcome.detail = {"job_id": job_id, "chunks": final.get("chunk_count")}


async def _wait_for_job(client: httpx.AsyncClient, target: Target, job_id: str) -> dict[str, Any]:
    """The job's final snapshot, from its SSE progress stream (``event: done``)."""
    url = f"{target.app_url}/tts/progress/{job_id}/events"
    async with client.stream("GET", url) as response:
        _check(response, f"GET {url}")
        event, data = None, ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif not line:  # end of one event
                if event == "done":
                    return json.loads(data)
                if event == "shutdown":
                    raise RequestFailedError(f"server shut down while job {job_id} ran")
                event, data = None, ""
    raise RequestFailedError(f"progress stream of job {job_id} ended without a done event")


async def _ws(client: httpx.AsyncClient, target: Target, planned: Planned, outcome: Outcome) -> None:
    import websockets

    message = {
        "type": "speak",
        "id": f"req-{planned.index}",
        "text": planned.text,
        "voice": planned.voice,
        "nfe_step": target.nfe,
        "seed": planned.seed,
    }
    samples = 0
    pieces = 0
    async with websockets.connect(
        target.ws_url, subprotocols=[WS_PROTOCOL], max_size=2**24, open_timeout=60, ping_interval=None
    ) as ws:
        ready = json.loads(await ws.recv())
        if ready.get("type") != "ready":
            raise RequestFailedError(f"WebSocket: expected a ready frame, got {ready}")
        await ws.send(json.dumps(message, ensure_ascii=False))
        while True:
            frame = await ws.recv()
            if isinstance(frame, bytes):
                magic, _seq, _index, count = WS_HEADER.unpack_from(frame)
                if magic != b"F5PC" or len(frame) != WS_HEADER.size + 2 * count:
                    raise RequestFailedError("WebSocket: malformed audio frame")
                if outcome.first_audio_s is None and count:
                    outcome.first_audio_s = time.perf_counter() - outcome.started
                samples += count
                pieces += 1
                continue
            payload = json.loads(frame)
            if payload.get("type") == "done":
                break
            if payload.get("type") in ("error", "closing"):
                raise RequestFailedError(f"WebSocket: {payload.get('code')}: {payload.get('message')}")
    if not samples:
        raise RequestFailedError("WebSocket: done without audio")
    outcome.audio_s = samples / SAMPLE_RATE
    outcome.detail = {"frames": pieces}


async def _speech(client: httpx.AsyncClient, target: Target, planned: Planned, outcome: Outcome) -> None:
    body = {
        "model": "tts-1",
        "input": planned.text,
        "voice": planned.voice,
        "response_format": "pcm",
        "stream": True,
        "nfe_step": target.nfe,
        "seed": planned.seed,
    }
    received = 0
    async with client.stream("POST", f"{target.app_url}/v1/audio/speech", json=body) as response:
        if response.status_code != 200:
            await response.aread()
            _check(response, "POST /v1/audio/speech")
        async for data in response.aiter_bytes():
            if data and outcome.first_audio_s is None:
                outcome.first_audio_s = time.perf_counter() - outcome.started
            received += len(data)
    if not received or received % 2:
        raise RequestFailedError(f"OpenAI speech stream: {received} bytes of 16-bit PCM")
    outcome.audio_s = received / 2 / SAMPLE_RATE


async def _runpod(client: httpx.AsyncClient, target: Target, planned: Planned, outcome: Outcome) -> None:
    assert target.runpod_url is not None
    body = {
        "input": {
            "text": planned.text,
            "ref_name": planned.voice,
            "nfe_step": target.nfe,
            "seed": planned.seed,
        }
    }
    response = await client.post(f"{target.runpod_url}/runsync", json=body)
    _check(response, "POST /runsync")
    result = response.json()
    if result.get("status") != "COMPLETED":
        status, error = result.get("status"), result.get("error")
        raise RequestFailedError(f"RunPod job {result.get('id')}: {status}: {error}")
    output = result["output"]
    data = await _download(client, output["download_url"])
    outcome.audio_s = _wav_seconds(data)
    outcome.detail = {"job_id": output.get("job_id"), "runpod_job_id": result.get("id")}


async def run_clients(
    target: Target, per_client: list[list[Planned]], *, request_timeout: float
) -> tuple[list[Outcome], float]:
    """Run every client at once (each its requests one after the other); ``(outcomes, wall s)``."""
    outcomes: list[Outcome] = []
    limits = httpx.Limits(max_connections=4 * len(per_client) + 8, max_keepalive_connections=len(per_client))
    timeout = httpx.Timeout(request_timeout, connect=60.0)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def one_client(index: int, requests: list[Planned]) -> None:
            for planned in requests:
                outcome = Outcome(
                    planned.index, index, planned.kind, planned.text_id, planned.voice, planned.seed
                )
                outcomes.append(outcome)
                try:
                    await asyncio.wait_for(run_request(client, target, planned, outcome), request_timeout)
                except TimeoutError:
                    outcome.error = f"no result within {request_timeout:g} s"
                except Exception as exc:  # every failure is counted and reported, none is hidden
                    outcome.error = f"{type(exc).__name__}: {exc}"[:500]

        started = time.perf_counter()
        await asyncio.gather(*(one_client(i, requests) for i, requests in enumerate(per_client)))
        wall = time.perf_counter() - started
    outcomes.sort(key=lambda o: o.index)
    return outcomes, wall
