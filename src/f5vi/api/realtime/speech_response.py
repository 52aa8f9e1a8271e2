"""The answer to ``POST /v1/audio/speech``: the whole file, or bytes streamed while they are made.

Both modes run as a stream in the job queue, in turn with TTS jobs (one engine). The response
headers are only sent once the first audio exists, so early failures (unknown voice, nothing to say,
queue full, model loading) are ordinary JSON errors. A failure after that ends the response without
its final chunk, so clients see an incomplete body rather than silently short audio.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from f5vi.api.captioned import captioned
from f5vi.api.disconnect import unless_disconnected
from f5vi.api.errors import ApiError
from f5vi.api.openai_names import resolve_voice_name
from f5vi.api.realtime.frames import FirstChunkClock, encoded_frames
from f5vi.api.realtime.speech_request import SpeechRequest
from f5vi.api.verification import verification_headers
from f5vi.config import Settings
from f5vi.engine.audio import encode_audio
from f5vi.engine.stream_encoder import PROGRESSIVE_FORMATS, StreamEncoder, open_stream_encoder
from f5vi.formats import FORMATS
from f5vi.jobs.requests import TTSInput, lexicon_tuple
from f5vi.jobs.streaming import AudioStream, StreamService
from f5vi.metrics import Metrics
from f5vi.voices.library import VoiceLibrary

logger = logging.getLogger(__name__)


async def speech_response(
    body: SpeechRequest,
    request: Request,
    streams: StreamService,
    voices: VoiceLibrary,
    metrics: Metrics,
    settings: Settings,
) -> Response:
    """Open the stream for ``body`` and answer with the file, the streamed bytes or SSE events."""
    clock = FirstChunkClock(metrics, "openai")
    fmt = body.response_format
    voice = await anyio.to_thread.run_sync(
        resolve_voice_name, body.voice_name, voices, settings.default_voice
    )
    if body.timestamps and (body.stream or body.stream_format == "sse"):
        raise ApiError(422, "invalid_parameter", "timestamps come with a whole answer: drop stream / "
                       "stream_format, or use WS /tts/stream for word times per chunk")  # fmt: skip
    streaming = streams_by_default(fmt) if body.stream is None else body.stream
    streaming = not body.timestamps and (streaming or body.stream_format == "sse")
    params = TTSInput(
        text=body.input,
        ref_name=voice,
        speed=body.speed,
        nfe_step=body.nfe_step,
        seed=body.seed,
        verify=body.verify,
        text_type=body.text_type,
        lexicon=lexicon_tuple(body.lexicon),
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
        return await _one_shot(request, stream, fmt, headers, body.input if body.timestamps else None)

    encoder = open_stream_encoder(fmt, stream.sample_rate)
    try:
        first = await unless_disconnected(request, stream.get())
    except BaseException:
        encoder.close()
        await stream.aclose()
        raise
    if first is None:  # the client went away (or nothing was produced)
        encoder.close()
        await stream.aclose()
        return Response(status_code=204)
    chunks = _encoded(stream, encoder, first, clock)
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


def streams_by_default(fmt: str) -> bool:
    """As OpenAI's endpoint: a body that can be sent while it is made is; flac is whole (libFLAC
    writes its length last, and an unknown length does not open)."""
    return fmt in PROGRESSIVE_FORMATS


def _attachment(fmt: str) -> dict[str, str]:
    return {"Content-Disposition": f'inline; filename="speech.{FORMATS[fmt].extension}"'}


async def _one_shot(
    request: Request, stream: AudioStream, fmt: str, headers: dict[str, str], captions_of: str | None
) -> Response:
    try:
        pieces: list[np.ndarray] = []

        async def collect() -> bool:
            async for piece in stream:
                pieces.append(piece)
            return True

        finished = await unless_disconnected(request, collect())
    finally:
        await stream.aclose()
    if finished is None:
        return Response(status_code=204)  # the client left; nobody reads this
    audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    data = await anyio.to_thread.run_sync(encode_audio, audio, stream.sample_rate, fmt)
    if captions_of is not None and stream.timestamps is not None:
        answer = captioned(captions_of, data, fmt, stream.sample_rate, stream.timestamps.to_dict())
        return JSONResponse(answer.model_dump(), headers=headers)
    return Response(
        data,
        media_type=FORMATS[fmt].content_type(stream.sample_rate),
        headers={**headers, **_attachment(fmt), **verification_headers(stream.stats.verification)},
    )


async def _pieces(first: np.ndarray, stream: AudioStream) -> AsyncIterator[np.ndarray]:
    piece: np.ndarray | None = first
    while piece is not None:
        yield piece
        piece = await stream.get()


async def _encoded(
    stream: AudioStream, encoder: StreamEncoder, first: np.ndarray, clock: FirstChunkClock
) -> AsyncIterator[bytes]:
    """Encoded bytes of ``first`` and every later piece, then the encoder's tail."""
    try:
        async for data in encoded_frames(_pieces(first, stream), encoder.feed, clock, encoder.finish):
            yield data
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
