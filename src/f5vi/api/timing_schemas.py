"""Response models of timestamps (job results, ``/v1/audio/speech`` with ``timestamps``, stream frames)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class TimedChunkInfo(BaseModel):
    index: int
    start: float = Field(description="Seconds; where the cross-fade into this chunk starts.")
    end: float
    start_sample: int = Field(description="The same instants in samples (exact: planned durations + fades).")
    end_sample: int
    voice_id: str | None
    text: str = Field(description="The normalised text the model read.")


class TimedSentenceInfo(BaseModel):
    text: str = Field(description="The sentence as submitted.")
    start: float
    end: float
    char_start: int = Field(description="Offsets into the submitted text.")
    char_end: int
    exact: bool = Field(description="Both ends fall on chunk boundaries (exact to the sample).")


class TimedWordInfo(BaseModel):
    text: str = Field(description="The spoken (normalised) word.")
    start: float
    end: float
    char_start: int = Field(
        description="The submitted token it was read from ('2024' for each word of its reading)."
    )
    char_end: int
    chunk: int


class TimestampsInfo(BaseModel):
    """Times in seconds of the final audio; `method` says how the word times were obtained."""

    method: Literal["estimated", "aligned"] = Field(
        description="estimated: planned durations shared out by UTF-8 bytes, snapped to silences; "
        "aligned: CTC forced alignment (F5VI_ALIGNER_MODEL)."
    )
    chunks_method: Literal["exact"] = "exact"
    notes: list[str] = Field(description="How the times were obtained (and why not aligned).")
    chunks: list[TimedChunkInfo]
    sentences: list[TimedSentenceInfo]
    words: list[TimedWordInfo]


class SubtitleUrls(BaseModel):
    srt: str
    vtt: str
    json_: str = Field(alias="json")

    model_config = {"populate_by_name": True, "serialize_by_alias": True}
