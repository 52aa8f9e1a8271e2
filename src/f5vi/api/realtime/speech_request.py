"""OpenAI's ``audio.speech.create`` body as this server accepts it, and its SSE event schema."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from f5vi.api.responses import sse_content
from f5vi.engine.text.lexicon import MAX_REQUEST_ENTRIES
from f5vi.engine.validation import SPEED_RANGE
from f5vi.jobs.requests import (
    LEXICON_HELP,
    SSML_HELP,
    VERIFY_HELP,
    VOICE_TAGS_HELP,
    LexiconItem,
    NfeStep,
    Seed,
    SpeechText,
    TextTypeField,
)
from f5vi.voices.names import MAX_REF_NAME_CHARS, REF_NAME_PATTERN

SPEED_MIN, SPEED_MAX = SPEED_RANGE

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
        description="Text to speak (Vietnamese). Limit: `F5VI_MAX_TEXT_CHARS`. " + VOICE_TAGS_HELP + SSML_HELP
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
    stream: bool | None = Field(
        None,
        description="Send audio while it is generated (first bytes after the first text chunk), as "
        "OpenAI's endpoint does. Default: streamed for mp3, opus, ogg, wav and pcm; flac is sent "
        "complete. `false`: the whole file with a Content-Length. "
        'With the OpenAI SDK: `extra_body={"stream": false}`.',
    )
    stream_format: Literal["audio", "sse"] = Field(
        "audio",
        description="`sse`: Server-Sent Events `speech.audio.delta`/`speech.audio.done` (implies stream).",
    )
    instructions: str | None = Field(None, description="Accepted and ignored (no style control).")
    nfe_step: NfeStep | None = Field(None, description="ODE steps (quality/speed); default 32.")
    seed: Seed | None = Field(None, description="Random seed.")
    verify: bool | None = Field(None, description="Extension. " + VERIFY_HELP)
    timestamps: bool = Field(
        False,
        description="Answer JSON (Kokoro's captioned-speech shape): base64 `audio` + word `timestamps` "
        "with offsets into `input`. Not with `stream`; streamed word times: WS /tts/stream.",
    )
    text_type: TextTypeField = Field("auto", description="`ssml`, `text`, or `auto` (`<speak>` = SSML).")
    lexicon: list[LexiconItem] | None = Field(None, max_length=MAX_REQUEST_ENTRIES, description=LEXICON_HELP)

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
