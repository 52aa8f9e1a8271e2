"""``POST /v1/audio/speech``: OpenAI-compatible speech, so any OpenAI SDK works unchanged.

Point the SDK at ``base_url=http://<host>:<port>/v1`` with the server's API key (any string when
the server has none). Fields:

- ``model``: accepted and ignored (the ids of ``GET /v1/models``: ``f5-tts``, ``f5vi``, ``tts-1``,
  ``tts-1-hd``, ``gpt-4o-mini-tts``; or anything else): the server has one model.
- ``voice``: a voice id of this server (``GET /voices``, ``GET /v1/audio/voices``), also as
  ``{"id": "..."}``. OpenAI's built-in names (``alloy``, ``echo``, ...) select the voice of that id if
  the library has one, else ``F5VI_DEFAULT_VOICE``, else the library's first voice in id order, so
  unmodified OpenAI code gets a voice (:mod:`f5vi.api.openai_names`).
- ``response_format``: ``mp3`` (default, as OpenAI), ``opus``, ``flac``, ``wav`` (16-bit PCM),
  ``pcm`` (raw s16le, 24 kHz, mono) and ``ogg`` (Vorbis). ``aac`` is refused (422
  ``unsupported_format``, and not in the schema's enum): no dependency has an AAC encoder (libsndfile
  has none; torchaudio 2.11 saves only through torchcodec).
- ``speed``: 0.3-2.0 here (OpenAI allows 0.25-4.0); outside that: 422 in the error shape. Omitted:
  the server default (``F5VI_SPEED``, 0.9).
- ``stream`` (not in OpenAI's API; the SDK sends it with ``extra_body={"stream": True}``): audio
  bytes are sent as soon as the first text chunk is synthesised, the rest while later chunks are
  generated. ``stream_format="sse"`` streams OpenAI's ``speech.audio.delta`` / ``speech.audio.done``
  events (base64 audio) instead of raw bytes.
- ``nfe_step``, ``seed`` (extensions, also through ``extra_body``).

Both modes run as work items in the job queue, in turn with TTS jobs (one engine). The response
headers are only sent once the first audio exists, so early failures (unknown voice, nothing to say,
queue full, model loading) are ordinary JSON errors. A failure after that ends the response
without its final chunk, so clients see an incomplete body rather than silently short audio.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Annotated, Any, Literal, TypeVar

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from f5vi.api.audio_media import GENERIC_NOTE, audio_content
from f5vi.api.auth import bearer_scheme
from f5vi.api.deps import MetricsDep, SettingsDep, StreamsDep, VoicesDep
from f5vi.api.openai_names import resolve_voice_name
from f5vi.api.responses import error_responses, sse_content
from f5vi.api.verification import verification_headers
from f5vi.engine.audio import encode_audio
from f5vi.engine.stream_encoder import StreamEncoder, open_stream_encoder
from f5vi.formats import FORMATS
from f5vi.jobs.requests import VERIFY_HELP, VOICE_TAGS_HELP, NfeStep, Seed, SpeechText, TTSInput
from f5vi.jobs.streaming import AudioStream
from f5vi.voices.names import MAX_REF_NAME_CHARS, REF_NAME_PATTERN

logger = logging.getLogger(__name__)
router = APIRouter(tags=["openai"], dependencies=[Depends(bearer_scheme)])
T = TypeVar("T")

SPEED_MIN, SPEED_MAX = 0.3, 2.0
DISCONNECT_POLL_SECONDS = 0.25

SpeechFormat = Literal["mp3", "opus", "flac", "wav", "pcm", "ogg"]


VoiceName = Annotated[
    str,
    # The pattern is documented and enforced by the voice library (400 ``invalid_voice_name``).
    Field(min_length=1, max_length=MAX_REF_NAME_CHARS, json_schema_extra={"pattern": REF_NAME_PATTERN}),
]


class VoiceRef(BaseModel):
    model_config = ConfigDict(strict=True)

    id: VoiceName


class SpeechRequest(BaseModel):
    """OpenAI's ``audio.speech.create`` body plus ``stream``, ``nfe_step`` and ``seed`` (typed strictly)."""

    model_config = ConfigDict(
        extra="ignore",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "model": "tts-1",
                    "input": "Xin chào các bạn.",
                    "voice": "vi_north_male",
                    "response_format": "mp3",
                }
            ]
        },
    )

    model: str = Field(
        "f5-tts", max_length=256, description="Accepted and recorded; the server has one model."
    )
    input: SpeechText = Field(
        description="Text to speak (Vietnamese). Limit: `F5VI_MAX_TEXT_CHARS`. " + VOICE_TAGS_HELP
    )
    voice: VoiceName | VoiceRef = Field(
        description='A voice id of this server (`GET /voices`) or `{"id": ...}`. OpenAI names (alloy, echo, '
        "...) pick the voice of that id, else F5VI_DEFAULT_VOICE, else the first voice of the library."
    )
    response_format: SpeechFormat = Field(
        "mp3",
        description="mp3 (default), opus, flac, wav (16-bit PCM), pcm (s16le 24 kHz mono), ogg. Not aac.",
    )
    speed: float | None = Field(
        None,
        description="0.3-2.0 (narrower than OpenAI's 0.25-4.0); default: the server's (0.9).",
        # Documented here, checked by the validator below (with a message that names OpenAI's range).
        json_schema_extra={"minimum": SPEED_MIN, "maximum": SPEED_MAX},
    )
    stream: bool = Field(
        False,
        description="Send audio while it is generated (first bytes after the first text chunk). "
        'With the OpenAI SDK: `extra_body={"stream": true}`.',
    )
    stream_format: Literal["audio", "sse"] = Field(
        "audio",
        description="`sse`: Server-Sent Events `speech.audio.delta`/`speech.audio.done` (implies stream).",
    )
    instructions: str | None = Field(None, description="Accepted and ignored (no style control).")
    nfe_step: NfeStep | None = Field(None, description="ODE steps (quality/speed); default 32.")
    seed: Seed | None = Field(None, description="Random seed.")
    verify: bool | None = Field(None, description="Extension. " + VERIFY_HELP)

    @field_validator("response_format", mode="before")
    @classmethod
    def _not_aac(cls, value: object) -> object:
        if value == "aac":
            raise PydanticCustomError(
                "unsupported_format",
                "aac is not supported by this server; use mp3, opus, flac, wav, pcm or ogg",
            )
        return value

    @field_validator("speed")
    @classmethod
    def _speed_in_range(cls, value: float | None) -> float | None:
        if value is not None and not SPEED_MIN <= value <= SPEED_MAX:
            raise ValueError(
                f"speed must be between {SPEED_MIN} and {SPEED_MAX} on this server "
                f"(OpenAI's 0.25-4.0 is wider), got {value:g}"
            )
        return value

    @property
    def voice_name(self) -> str:
        return self.voice.id if isinstance(self.voice, VoiceRef) else self.voice


SPEECH_SSE = sse_content(
    "One event of OpenAI's speech stream (`stream_format: sse`): unnamed events whose data is "
    "`speech.audio.delta` (base64 audio in the requested format) and finally `speech.audio.done`.",
    {
        "oneOf": [
            {
                "type": "object",
                "required": ["type", "audio"],
                "properties": {"type": {"const": "speech.audio.delta"}, "audio": {"type": "string"}},
            },
            {
                "type": "object",
                "required": ["type", "audio_seconds"],
                "properties": {
                    "type": {"const": "speech.audio.done"},
                    "audio_seconds": {"type": "number"},
                    "usage": {"type": "null"},
                },
            },
        ]
    },
    events=None,
    example='data: {"type": "speech.audio.delta", "audio": "SUQz..."}\n\n'
    'data: {"type": "speech.audio.done", "audio_seconds": 1.5, "usage": null}\n\n',
)


@router.post(
    "/v1/audio/speech",
    summary="Create speech (OpenAI-compatible)",
    description=(
        "OpenAI `audio.speech.create`: returns the audio itself. With `stream: true` the audio is sent while "
        "it is generated (mp3, opus, ogg, wav, pcm stream progressively; flac is sent when complete). "
        "`stream_format: sse` sends `speech.audio.delta` events with base64 audio, then `speech.audio.done`."
    ),
    response_class=Response,
    responses={
        200: {
            "description": "The audio (or an SSE stream with `stream_format: sse`)." + GENERIC_NOTE,
            "content": audio_content(
                "audio/mpeg",
                "audio/ogg",
                "audio/flac",
                "audio/wav",
                "audio/pcm",
                extra=SPEECH_SSE,
            ),
        },
        **error_responses(400, 404, 413, 422, 429, 503),
    },
)
async def create_speech(
    body: SpeechRequest,
    request: Request,
    streams: StreamsDep,
    voices: VoicesDep,
    metrics: MetricsDep,
    settings: SettingsDep,
) -> Response:
    received = time.monotonic()
    fmt = body.response_format
    default_voice = settings.default_voice
    voice = await anyio.to_thread.run_sync(resolve_voice_name, body.voice_name, voices, default_voice)
    streaming = body.stream or body.stream_format == "sse"
    params = TTSInput(
        text=body.input,
        ref_name=voice,
        speed=body.speed,
        nfe_step=body.nfe_step,
        seed=body.seed,
        verify=body.verify,
    )
    stream = await streams.open(params, whole=not streaming, label="openai")
    logger.info(
        "speech %s: model=%r voice=%s format=%s stream=%s%s",
        stream.id,
        body.model,
        voice,
        fmt,
        streaming,
        " (sse)" if body.stream_format == "sse" else "",
    )
    headers = {"X-F5VI-Stream-Id": stream.id, "X-F5VI-Voice": voice, "Cache-Control": "no-store"}
    if not streaming:
        return await _one_shot(request, stream, fmt, headers)

    encoder = open_stream_encoder(fmt, stream.sample_rate)
    try:
        first = await _unless_disconnected(request, stream, stream.get())
    except BaseException:
        encoder.close()
        await stream.aclose()
        raise
    if first is None:  # the client went away (or nothing was produced)
        encoder.close()
        await stream.aclose()
        return Response(status_code=204)
    chunks = _encoded(stream, encoder, first, metrics, received)
    if body.stream_format == "sse":
        return StreamingResponse(
            _sse(chunks, stream),
            media_type="text/event-stream",
            headers={**headers, "X-Accel-Buffering": "no"},
        )
    return StreamingResponse(
        chunks,
        media_type=FORMATS[fmt].content_type(stream.sample_rate),
        headers={**headers, "X-Accel-Buffering": "no", **_attachment(fmt)},
    )


def _attachment(fmt: str) -> dict[str, str]:
    return {"Content-Disposition": f'inline; filename="speech.{FORMATS[fmt].extension}"'}


async def _one_shot(request: Request, stream: AudioStream, fmt: str, headers: dict[str, str]) -> Response:
    try:
        pieces: list[np.ndarray] = []

        async def collect() -> bool:
            async for piece in stream:
                pieces.append(piece)
            return True

        finished = await _unless_disconnected(request, stream, collect())
    finally:
        await stream.aclose()
    if finished is None:
        return Response(status_code=204)  # the client left; nobody reads this
    audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    data = await anyio.to_thread.run_sync(encode_audio, audio, stream.sample_rate, fmt)
    return Response(
        data,
        media_type=FORMATS[fmt].content_type(stream.sample_rate),
        headers={**headers, **_attachment(fmt), **verification_headers(stream.stats.verification)},
    )


async def _unless_disconnected(request: Request, stream: AudioStream, work: Awaitable[T]) -> T | None:
    """Await ``work``; if the client disconnects first, cancel the stream and return None."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_SECONDS)
            if done:
                return task.result()
            if await request.is_disconnected():
                logger.info("speech %s: the client disconnected; cancelling", stream.id)
                await stream.aclose()
                return None
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _encoded(
    stream: AudioStream,
    encoder: StreamEncoder,
    first: np.ndarray,
    metrics: Any,
    received: float,
) -> AsyncIterator[bytes]:
    """Encoded bytes of ``first`` and every later piece, then the encoder's tail."""
    sent_any = False
    try:
        piece: np.ndarray | None = first
        while piece is not None:
            data = await anyio.to_thread.run_sync(encoder.feed, piece)
            if data:
                if not sent_any:
                    sent_any = True
                    metrics.first_chunk_latency.labels("openai").observe(time.monotonic() - received)
                yield data
            piece = await stream.get()
        tail = await anyio.to_thread.run_sync(encoder.finish)
        if tail:
            if not sent_any:
                metrics.first_chunk_latency.labels("openai").observe(time.monotonic() - received)
            yield tail
    except Exception as exc:
        code = getattr(exc, "code", type(exc).__name__)
        logger.warning("speech %s: stream ended early (%s); the response is cut short", stream.id, code)
        raise
    finally:
        encoder.close()
        await stream.aclose()


async def _sse(chunks: AsyncIterator[bytes], stream: AudioStream) -> AsyncIterator[bytes]:
    """OpenAI's SSE speech stream: ``speech.audio.delta`` events, then ``speech.audio.done``."""
    async for data in chunks:
        event = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")}
        yield f"data: {json.dumps(event)}\n\n".encode()
    done: dict[str, Any] = {
        "type": "speech.audio.done",
        "audio_seconds": round(stream.stats.audio_seconds, 3),
        "usage": None,
    }
    if stream.stats.verification is not None:
        done["verification"] = stream.stats.verification
    yield f"data: {json.dumps(done)}\n\n".encode()
