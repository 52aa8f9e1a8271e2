"""``POST /v1/audio/speech`` with ``"timestamps": true``: base64 audio + word times in one JSON.

Modelled on Kokoro-FastAPI's captioned speech (``{"audio": <base64>, "audio_format", "timestamps":
[{"word", "start_time", "end_time"}]}``): ``word`` is the token as the client wrote it ("2024", not
"hai nghìn không trăm hai mươi tư"), timed by the words read from it, with its character offsets.
The full timestamps (method, sentences, spoken words, chunks) come along as ``detail``.
"""

from __future__ import annotations

import base64
from typing import Any

from pydantic import BaseModel, Field

from f5vi.api.timing_schemas import TimestampsInfo
from f5vi.jobs.subtitles import tokens


class CaptionedWord(BaseModel):
    word: str = Field(description="The token as written in `input`.")
    start_time: float
    end_time: float
    char_start: int
    char_end: int


class CaptionedSpeech(BaseModel):
    """The answer of `/v1/audio/speech` when `timestamps` is true (not streamed)."""

    audio: str = Field(description="The audio file in `audio_format`, base64.")
    audio_format: str
    sample_rate: int
    method: str = Field(description="How the word times were obtained: estimated or aligned.")
    timestamps: list[CaptionedWord]
    detail: TimestampsInfo


def captioned(
    text: str, audio: bytes, fmt: str, sample_rate: int, timestamps: dict[str, Any]
) -> CaptionedSpeech:
    words = [
        CaptionedWord(word=t.text, start_time=t.start, end_time=t.end, char_start=t.char_start,
                      char_end=t.char_end)
        for t in tokens(text, timestamps)
    ]  # fmt: skip
    return CaptionedSpeech(
        audio=base64.b64encode(audio).decode("ascii"),
        audio_format=fmt,
        sample_rate=sample_rate,
        method=str(timestamps["method"]),
        timestamps=words,
        detail=TimestampsInfo.model_validate(timestamps),
    )
