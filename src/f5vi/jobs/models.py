"""The job record: what was asked, where it stands, and what came out.

Plain frozen dataclasses so the store, the manager, the HTTP layer and the RunPod worker can share
them without importing each other. Updates make a new instance (``dataclasses.replace``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from f5vi.jobs.states import JobState

JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
"""Client-chosen job ids: letters, digits, ``_`` and ``-``, 1-128 characters, starting alphanumeric.

No dots or slashes, so an id can never name a path, and it is safe in URLs and log lines as is.
"""
_JOB_ID_RE = re.compile(JOB_ID_PATTERN)

JOB_KIND_TTS = "tts"


def is_valid_job_id(value: str) -> bool:
    return bool(_JOB_ID_RE.fullmatch(value))


@dataclass(frozen=True)
class JobRequest:
    """A synthesis request as persisted: everything needed to run (or re-run) it after a restart.

    ``voice_id`` is the library id that ``ref_name`` resolved to at submission; ``ref_name`` is kept
    verbatim for the response (``sample_used`` is the id).
    """

    text: str
    voice_id: str
    ref_name: str
    speed: float
    nfe_step: int
    seed: int | None
    format: str
    cfg_strength: float
    sway_sampling_coef: float
    ode_method: str
    cross_fade_seconds: float
    text_type: str = "auto"
    """``auto`` (SSML when the text starts with ``<speak>``), ``text`` or ``ssml``."""
    lexicon: tuple[tuple[str, str, bool], ...] = ()
    """The request's own respellings ``(term, say, case_sensitive)``."""
    use_epss: bool = True
    verify: bool = False
    verify_max_cer: float = 0.2
    verify_max_attempts: int = 3

    def fingerprint(self) -> str:
        """Hash of what the client chose, used to tell a retry from a conflicting reuse of an id."""
        chosen: dict[str, object] = {
            "text": self.text,
            "voice_id": self.voice_id,
            "speed": round(float(self.speed), 6),
            "nfe_step": int(self.nfe_step),
            "seed": self.seed,
            "format": self.format,
        }
        if self.text_type != "auto":  # only when chosen: fingerprints of older jobs stay the same
            chosen["text_type"] = self.text_type
        if self.lexicon:
            chosen["lexicon"] = [list(entry) for entry in self.lexicon]
        if self.verify:  # only then: the fingerprints of requests without it stay what they were
            chosen["verify"] = True
        blob = json.dumps(chosen, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, blob: str) -> JobRequest:
        data = json.loads(blob)
        values = {k: data[k] for k in cls.__dataclass_fields__ if k in data}  # older rows lack new fields
        if "lexicon" in values:
            values["lexicon"] = tuple((str(t), str(s), bool(c)) for t, s, c in values["lexicon"])
        return cls(**values)


@dataclass(frozen=True)
class JobSegment:
    """One voice's stretch of a job's text (``[voice_id]`` tags switch voices), in text order."""

    voice_id: str
    chunk_count: int


@dataclass(frozen=True)
class JobResult:
    """What a successful job produced. ``filename`` is relative to the output storage."""

    filename: str
    format: str
    media_type: str
    size_bytes: int
    duration_seconds: float
    sample_rate: int
    seed: int
    reference_text: str
    normalized_text: str
    chunk_count: int
    processing_time_seconds: float
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    remote_url: str | None = None
    """Presigned URL of the copy in the bucket (bucket-mirrored storage), None when served locally."""
    remote_url_expires_at: float | None = None
    segments: list[JobSegment] = field(default_factory=list)
    """The voices that said the text, in order (empty in results stored before voice tags existed)."""
    timestamps: dict[str, Any] | None = None
    """Chunk, sentence and word times (``Timestamps.to_dict``); None in results stored before them."""
    verification: list[dict[str, Any]] | None = None
    """Per chunk with verification on: ``{"chunk", "cer", "attempts", "seed", "transcript", "passed"}``."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, blob: str) -> JobResult:
        data: dict[str, Any] = json.loads(blob)
        values = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        values["segments"] = [JobSegment(**segment) for segment in data.get("segments", [])]
        return cls(**values)


@dataclass(frozen=True)
class Job:
    """One row of the job table. Times are Unix epoch seconds (floats), as the seed reported them."""

    id: str
    seq: int
    kind: str
    state: JobState
    request: JobRequest
    request_hash: str
    idempotency_key: str | None
    output_filename: str
    confirm_token: str
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    progress: float = 0.0
    stage: str | None = None
    chunk_index: int | None = None
    chunk_count: int | None = None
    eta_seconds: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    result: JobResult | None = None
    confirmed_at: float | None = None
    output_deleted_at: float | None = None
    owner: str | None = None
    """The instance that claimed the job (a shared PostgreSQL store; see :mod:`f5vi.jobs.sharing`)."""
    lease_expires_at: float | None = None
    """Until when the owner's claim holds; after it another instance may take the job over."""
    cancel_requested_at: float | None = None
    """A kill asked on another instance than the owner; the owner stops the run at its next step."""

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal
