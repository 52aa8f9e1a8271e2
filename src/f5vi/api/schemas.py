"""Request and response models of the HTTP API.

Field names follow the seed's Flask API (``text``, ``ref_name``, ``speed``, ``job_id``; ``wav_url``,
``filename``, ``sample_used``, ``text_ref``; ``progress``/``status``/``extra``) so its clients keep
working; new fields are added next to them, never instead of them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from f5vi.api.timing_schemas import SubtitleUrls, TimestampsInfo
from f5vi.api.verification import ChunkVerificationInfo

# The normalisation report is the CLI's too, so it lives in jobs/; POST /normalize answers with it.
from f5vi.jobs.normalize_report import NormalizedChunk as NormalizedChunk
from f5vi.jobs.normalize_report import NormalizedSegment as NormalizedSegment
from f5vi.jobs.normalize_report import NormalizeResponse as NormalizeResponse
from f5vi.jobs.normalize_report import SegmentInfo
from f5vi.jobs.requests import SpeechFields
from f5vi.voices.names import MAX_REF_NAME_CHARS, REF_NAME_PATTERN


# ---------------------------------------------------------------------------------------- errors
class ErrorDetail(BaseModel):
    field: str = Field(description="Which input is wrong (dotted path).")
    message: str
    type: str = Field(description="Machine-readable kind of problem.")


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable error code, e.g. `voice_not_found`.")
    message: str = Field(description="What went wrong, for people.")
    details: list[ErrorDetail] | None = Field(None, description="Per-field problems (validation errors).")


class ErrorResponse(BaseModel):
    """Every error response of this API has this shape."""

    error: ErrorBody


# ---------------------------------------------------------------------------------------- health/status
class ModelInfo(BaseModel):
    model: str = Field(description="Where the weights came from (directory, file or hub id).")
    arch: str
    is_demo: bool = Field(description="True for the random-weight demo model: it produces noise, not speech.")
    device: str
    dtype: str
    sample_rate: int
    vocoder: str
    vocoder_type: Literal["vocos", "bigvgan"] = Field(
        "vocos",
        description="Which vocoder `vocoder` is; it is also the mel front end the checkpoint was trained "
        "on (set with F5VI_VOCODER; a checkpoint paired with the other one is refused at start).",
    )
    num_params: int | None = None


class HealthResponse(BaseModel):
    status: Literal["healthy", "loading", "unhealthy"] = Field(
        description="`healthy` once the model is loaded (HTTP 200); otherwise HTTP 503."
    )
    service: str = "f5-tts"
    ready: bool = Field(description="Readiness: the model is loaded and jobs run.")
    version: str
    model: ModelInfo | None = None
    is_demo: bool | None = Field(None, description="Shortcut for `model.is_demo`.")
    error: str | None = Field(None, description="Why the model failed to load.")


class CurrentJobInfo(BaseModel):
    job_id: str
    stage: str | None
    progress: float
    chunk_index: int | None
    chunk_count: int | None
    eta_seconds: float | None
    running_seconds: float


class StatusResponse(BaseModel):
    api_version: str
    engine_status: Literal["loading", "ready", "failed"]
    model_loaded: bool
    model: ModelInfo | None
    busy: bool = Field(description="A job (or other engine work) is running now.")
    current_job: str | None = Field(description="Id of the running job (seed field).")
    job_duration: float | None = Field(description="Seconds the running job has been running (seed field).")
    current: CurrentJobInfo | None
    queue_depth: int = Field(description="Jobs waiting (not counting the running one).")
    queue_max: int
    jobs: dict[str, int] = Field(description="Number of jobs per state in the job database.")
    device: str | None
    gpu_available: bool
    gpu_memory_allocated_mb: float | None = None
    gpu_memory_reserved_mb: float | None = None
    gpu_memory_total_mb: float | None = None


# ---------------------------------------------------------------------------------------- voices
class VoiceInfo(BaseModel):
    id: str
    wav: str = Field(description="Audio file name (seed field).")
    txt: str | None = Field(description="Transcript file name, null if the voice has none yet (seed field).")
    path: str = Field(description="Relative path of the audio (seed field); usable as `ref_name`.")
    size_mb: float
    duration_seconds: float
    sample_rate: int
    channels: int
    has_transcript: bool
    reference_text: str | None = Field(
        None, description="First 100 characters of the transcript (seed field)."
    )
    transcript: str | None = Field(None, description="The full transcript used for synthesis.")
    synthetic: bool = False
    description: str | None = None
    read_only: bool = Field(
        False,
        description="Ships with the server (or an operator's read-only directory): usable, but it cannot "
        "be overwritten or deleted through the API.",
    )


class VoiceListResponse(BaseModel):
    voices: list[VoiceInfo]
    count: int
    sample_dir: str = Field(description="Name of the voices directory (not its absolute path).")


class VoiceDeleted(BaseModel):
    status: Literal["deleted"] = "deleted"
    id: str


# ---------------------------------------------------------------------------------------- tts
class JobErrorInfo(BaseModel):
    code: str
    message: str


class JobResultInfo(BaseModel):
    filename: str
    wav_url: str = Field(description="Download URL of the audio (seed name; any format).")
    download_url: str
    confirmation_url: str = Field(description="POST here once the file is safely downloaded.")
    format: str
    media_type: str
    size_bytes: int
    duration_seconds: float
    sample_rate: int
    seed: int
    sample_used: str
    text_ref: str = Field(description="Reference transcript used (normalised).")
    normalized_text: str
    chunk_count: int
    segments: list[SegmentInfo] = Field(
        description="The voices that said the text, in order: one part for a text without voice tags; "
        "the chunk counts add up to `chunk_count`. Empty for jobs finished before voice tags existed."
    )
    processing_time_seconds: float
    warnings: list[str]
    verification: list[ChunkVerificationInfo] | None = Field(
        None, description="Per chunk when the job had `verify` on (null: it was off)."
    )
    output_available: bool = Field(description="False once retention removed the file.")
    expires_at: float | None = Field(description="When retention removes the file (epoch seconds).")
    timestamps: TimestampsInfo | None = Field(
        None, description="Chunk, sentence and word times (null for jobs finished before timestamps)."
    )
    subtitle_urls: SubtitleUrls | None = Field(
        None, description="SRT / WebVTT / JSON subtitles; they carry the job's token like `download_url`."
    )


class JobView(BaseModel):
    """A job as clients see it. ``status``/``progress``/``extra`` keep the seed's meaning."""

    job_id: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    status: Literal["pending", "processing", "completed", "failed", "cancelled"] = Field(
        description="Seed vocabulary of `state`: pending, processing, completed, failed, cancelled."
    )
    progress: float = Field(ge=0, le=100, description="0-100, never decreases; 100 only on success.")
    stage: str | None = Field(
        description="starting, transcribing, normalizing, synthesizing, vocoding, (with `verify`: verifying, "
        "resampling), encoding, saving, done."
    )
    chunk_index: int | None = Field(
        description="Chunks finished so far; with `verify`, while verifying or re-sampling, samplings done "
        "(and `chunk_count` samplings planned: chunks plus re-samplings)."
    )
    chunk_count: int | None
    extra: str | None = Field(description="Human-readable progress/result line (seed field).")
    eta_seconds: float | None = Field(description="Estimated seconds until the job finishes (or starts).")
    queue_position: int | None = Field(description="0 = next to run; null unless queued.")
    attempts: int
    cancel_requested: bool
    created_at: float
    started_at: float | None
    finished_at: float | None
    timestamp: float = Field(description="Last update, epoch seconds (seed field).")
    sample_used: str
    filename: str = Field(description="Output file name (known from submission on).")
    wav_url: str
    progress_url: str
    error: JobErrorInfo | None
    result: JobResultInfo | None


class TTSAccepted(JobView):
    """202 answer to POST /tts (also for an idempotent resubmission: see `replayed`)."""

    message: str
    text_ref: str | None = Field(description="Transcript of the reference voice (seed field).")
    confirmation_url: str
    check_url: str
    replayed: bool = Field(description="True when `job_id` named an existing identical job.")


class KillResponse(BaseModel):
    status: Literal["cancelled", "cancelling"]
    job_id: str
    message: str
    job: JobView


# ---------------------------------------------------------------------------------------- normalize
class NormalizeRequest(SpeechFields):
    """Preview how a text will be read. The body of `POST /tts` is accepted as is (extra fields ignored)."""

    ref_name: str | None = Field(  # type: ignore[assignment]  # optional here, as in `f5vi normalize`
        None,
        min_length=1,
        max_length=MAX_REF_NAME_CHARS,
        description="Reference voice, as for `POST /tts`. Omitted: `F5VI_DEFAULT_VOICE`, else the "
        "first voice of `GET /voices` (as `f5vi normalize`).",
        json_schema_extra={"pattern": REF_NAME_PATTERN},
    )

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"text": "Ngày 2/9/2024, giá vàng tăng 1,5%.", "ref_name": "vi_north_male", "speed": 0.9}
            ]
        },
    )


# ---------------------------------------------------------------------------------------- downloads/admin
class ConfirmResponse(BaseModel):
    status: Literal["confirmed"] = "confirmed"
    confirmed: bool = True
    job_id: str
    timestamp: float = Field(description="When the download was first confirmed (epoch seconds).")
    expires_at: float | None = Field(description="When the output will be removed.")


class CheckDownloadResponse(BaseModel):
    confirmed: bool
    job_id: str
    timestamp: float | None = Field(description="Confirmation time, or null (epoch seconds).")
    state: str


class CleanupResponse(BaseModel):
    status: Literal["cleaned", "scheduled"]
    memory: dict[str, float] | None = Field(description="Engine memory after cleanup (bytes), if it ran now.")
    outputs_removed: int = Field(description="Output files past retention removed by this call.")
