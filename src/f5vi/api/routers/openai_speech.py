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
- ``stream`` (not in OpenAI's API; the SDK sends it with ``extra_body={"stream": False}``): by
  default, as OpenAI's own endpoint, mp3, opus, ogg, wav and pcm are streamed: bytes are sent as soon
  as the first text chunk is synthesised, the rest while later chunks are generated (no
  Content-Length); flac is sent complete. ``false``: the whole file with a Content-Length; ``true``
  streams flac too (its bytes come at the end). MP3 is 80 kbit/s CBR either way.
- ``stream_format="sse"`` streams OpenAI's ``speech.audio.delta`` / ``speech.audio.done`` events
  (base64 audio) instead of raw bytes.
- ``nfe_step``, ``seed`` (extensions, also through ``extra_body``).

Both modes run as work items in the job queue, in turn with TTS jobs (one engine). The response
headers are only sent once the first audio exists, so early failures (unknown voice, nothing to say,
queue full, model loading) are ordinary JSON errors. A failure after that ends the response
without its final chunk, so clients see an incomplete body rather than silently short audio.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from f5vi.api.audio_media import GENERIC_NOTE, audio_content
from f5vi.api.auth import bearer_scheme
from f5vi.api.captioned import CaptionedSpeech
from f5vi.api.deps import MetricsDep, SettingsDep, StreamsDep, VoicesDep
from f5vi.api.realtime.speech_request import SPEECH_SSE, SpeechRequest
from f5vi.api.realtime.speech_response import speech_response
from f5vi.api.responses import error_responses

router = APIRouter(tags=["openai"], dependencies=[Depends(bearer_scheme)])


@router.post(
    "/v1/audio/speech",
    summary="Create speech (OpenAI-compatible)",
    description=(
        "OpenAI `audio.speech.create`: returns the audio itself, sent while it is generated (as OpenAI's "
        "endpoint) for mp3, opus, ogg, wav and pcm; flac is sent when complete. `stream: false` returns "
        "the whole file with a Content-Length. "
        "`stream_format: sse` sends `speech.audio.delta` events with base64 audio, then `speech.audio.done`."
    ),
    response_class=Response,
    responses={
        200: {
            "description": "The audio (or an SSE stream with `stream_format: sse`; JSON with "
            "`timestamps: true`)." + GENERIC_NOTE,
            "content": audio_content(
                "audio/mpeg",
                "audio/ogg",
                "audio/flac",
                "audio/wav",
                "audio/pcm",
                extra=SPEECH_SSE,
            ),
            "model": CaptionedSpeech,
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
    return await speech_response(body, request, streams, voices, metrics, settings)
