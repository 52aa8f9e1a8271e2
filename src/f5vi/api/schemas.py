"""Request and response models of the HTTP API.

Field names follow the seed's Flask API (``text``, ``ref_name``, ``speed``, ``job_id``; ``wav_url``,
``filename``, ``sample_used``, ``text_ref``; ``progress``/``status``/``extra``) so its clients keep
working; new fields are added next to them, never instead of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from f5vi.api.verification import ChunkVerificationInfo
from f5vi.jobs.requests import SpeechFields

if TYPE_CHECKING:
    from f5vi.engine.planning import TextPlan


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


class SegmentInfo(BaseModel):
    """One voice's stretch of the text, in text order (`[voice_id]` tags start a new one)."""

    voice_id: str = Field(description="The voice that said this part.")
    chunk_count: int = Field(description="Chunks of this part; they follow the previous parts' chunks.")


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

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"text": "Ngày 2/9/2024, giá vàng tăng 1,5%.", "ref_name": "vi_north_male", "speed": 0.9}
            ]
        },
    )


class NormalizedChunk(BaseModel):
    index: int = Field(description="Position of the chunk, from 0; synthesised and joined in this order.")
    voice_id: str = Field(description="The voice that says this chunk (`[voice_id]` tags switch it).")
    text: str = Field(description="Exactly what the model reads for this chunk (after the reference text).")
    bytes: int = Field(description="UTF-8 length, the unit of the chunk budget.")
    duration_frames: int = Field(description="Reference + generated mel frames (upstream's formula).")
    estimated_seconds: float = Field(description="Audio this chunk will produce, before cross-fading.")


class NormalizedSegment(SegmentInfo):
    """One voice's part of the text as the model will read it, with that voice's reference and budget."""

    normalized_text: str
    reference_text: str = Field(description="This voice's normalised transcript, read before its chunks.")
    max_chunk_bytes: int = Field(description="Chunk budget of this voice at this speed (UTF-8 bytes).")


class NormalizeResponse(BaseModel):
    """The text as the model will read it, split as synthesis will split it, and how long it will last."""

    voice_id: str = Field(description="The request's own voice (`ref_name`).")
    speed: float
    normalizer: str = Field(
        description="Normaliser that produced the text: `vinorm`, `hamster` (chosen, or the fallback "
        "when vinorm failed: see `warnings`) or `none`."
    )
    normalized_text: str = Field(description="Equal to `result.normalized_text` of a job with this text.")
    reference_text: str = Field(
        description="The voice's normalised transcript, read before every chunk (of the first part: "
        "see `segments` for each voice's)."
    )
    max_chunk_bytes: int = Field(
        description="Chunk budget for this voice and speed (UTF-8 bytes; of the first part)."
    )
    chunk_count: int
    chunks: list[NormalizedChunk]
    segments: list[NormalizedSegment] = Field(
        description="The text's voice parts in order (one without `[voice_id]` tags)."
    )
    estimated_duration_seconds: float = Field(
        description="Length of the result: the chunks' audio less the cross-fades between them."
    )
    warnings: list[str] = Field(
        description="Characters the vocabulary lacks, symbols that cannot be read, a fallback "
        "normaliser, digits left unread, overlong chunks."
    )

    @classmethod
    def from_plan(cls, plan: TextPlan, *, voice_id: str, speed: float, cross_fade_seconds: float) -> Self:
        def voice_of(segment_voice: str | None) -> str:
            return segment_voice or voice_id  # None: a bare reference, the request's own voice

        chunks = [
            NormalizedChunk(
                index=c.index,
                voice_id=voice_of(plan.segment_of(c).voice_id),
                text=c.text,
                bytes=len(c.text.encode("utf-8")),
                duration_frames=c.duration_frames,
                estimated_seconds=round(plan.chunk_seconds(c), 3),
            )
            for c in plan.chunks
        ]
        return cls(
            voice_id=voice_id,
            speed=speed,
            normalizer=plan.normalizer_used,
            normalized_text=plan.normalized_text,
            reference_text=plan.reference_text,
            max_chunk_bytes=plan.max_chunk_bytes,
            chunk_count=len(chunks),
            chunks=chunks,
            segments=[
                NormalizedSegment(
                    voice_id=voice_of(s.voice_id),
                    chunk_count=s.chunk_count,
                    normalized_text=s.normalized_text,
                    reference_text=s.reference_text,
                    max_chunk_bytes=s.max_chunk_bytes,
                )
                for s in plan.segments
            ],
            estimated_duration_seconds=round(plan.estimated_seconds(cross_fade_seconds), 3),
            warnings=list(plan.warnings),
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
