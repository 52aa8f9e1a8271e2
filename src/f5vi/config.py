"""All configuration of f5vi, read once from the environment (prefix ``F5VI_``) and passed down.

Nothing else in the package reads environment variables for its own settings: a component takes the
values it needs from the :class:`Settings` instance it is given, so tests can build several apps with
different settings in one process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "hynt/F5-TTS-Vietnamese-ViVoice"
DEFAULT_VOCODER = "charactr/vocos-mel-24khz"


class Settings(BaseSettings):
    """Service configuration. Every field can be set as ``F5VI_<FIELD_NAME>`` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="F5VI_", env_file=None, extra="ignore", populate_by_name=True
    )

    # --- model -------------------------------------------------------------------------------------
    model: str = Field(
        DEFAULT_MODEL,
        description="Checkpoint source: a local directory, a checkpoint file, or a Hugging Face repo id.",
    )
    model_arch: str | None = Field(
        None,
        description="F5TTS_Base | F5TTS_v1_Base | F5TTS_Small | E2TTS_Base | F5TTS_Base_bigvgan (F5TTS_Base "
        "trained on BigVGAN's mel: needs a BigVGAN vocoder); default: from the checkpoint.",
    )
    checkpoint_file: str | None = Field(
        None, description="Checkpoint inside a directory/repo (default: model_last.pt or the only one)."
    )
    vocab_file: str | None = Field(
        None, description="Vocab inside the model directory/repo (default: vocab.txt, else config.json)."
    )
    vocoder: str = Field(
        DEFAULT_VOCODER,
        description="Vocos or BigVGAN: a local directory (config.yaml + pytorch_model.bin, or NVIDIA's "
        "config.json + bigvgan_generator.pt) or a Hugging Face repo id (a BigVGAN one names 'bigvgan', "
        "e.g. nvidia/bigvgan_v2_24khz_100band_256x). It must be the vocoder of the checkpoint's mel.",
    )
    demo_model_dir: Path | None = Field(
        None,
        description="Where the demo model is made and loaded from (default: <data_dir>/models/demo); "
        "read it as `demo_model_path`.",
    )
    demo_fallback: bool = Field(
        False,
        description="If the configured model cannot be loaded, load the random-weight demo model (noise) "
        "instead of failing, saying so in the log, /health and every RunPod job output "
        "(`serve --demo-fallback` turns it on too).",
    )
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N | mps")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"

    # --- synthesis defaults (the seed's) -----------------------------------------------------------
    speed: float = 0.9
    nfe_step: int = 32
    cfg_strength: float = 2.0
    sway_sampling_coef: float = -1.0
    ode_method: Literal["euler", "midpoint"] = "euler"
    use_epss: bool = Field(
        True,
        description="Upstream's pruned time grid (EPSS) for 5, 6, 7, 10, 12 and 16 ODE steps; off: uniform "
        "steps with sway sampling (`f5vi eval --compare use_epss=false` measures the difference).",
    )
    target_rms: float = 0.1
    cross_fade_seconds: float = 0.15
    max_reference_seconds: float = 12.0
    engine_concurrency: int | None = Field(
        None,
        ge=1,
        description="Jobs and streams in flight at once; their chunks share ODE batches (up to "
        "max_batch_frames). Unset: 16 on GPUs, 4 on CPU (fair turns between requests; no batching).",
    )
    max_batch_frames: int | None = Field(
        None,
        description="Bound on padded frames x batch size when chunks share an ODE batch; unset: 16384 on "
        "GPUs, 1 (one chunk at a time) on CPU, where batching measured slower (bench/RESULTS.md).",
    )

    # --- text front end ----------------------------------------------------------------------------
    normalizer: Literal["vinorm", "hamster", "none"] = "vinorm"
    max_text_chars: int = 20_000
    asr_model: str = "vinai/PhoWhisper-small"
    aligner_model: str | None = Field(
        None,
        description="A Vietnamese wav2vec2 CTC model (hub id or local folder, transformers layout) for word "
        "timestamps by forced alignment (method 'aligned'); unset: words are estimated from the planned "
        "durations and the silences in the audio (method 'estimated').",
    )

    # --- verification and evaluation ---------------------------------------------------------------
    verify: bool = Field(
        False,
        description="Default of a request's `verify`: transcribe every chunk with F5VI_ASR_MODEL and sample "
        "it again while its CER is above F5VI_VERIFY_MAX_CER. Off by default: it needs PhoWhisper on every "
        "request; measured on CPU: +20 % for a chunk that passes, a full synthesis more per failed attempt "
        "(docs/verification.md).",
    )
    verify_max_cer: float = Field(
        0.2, ge=0.0, description="Highest character error rate (canonicalised) a verified chunk may have."
    )
    verify_max_attempts: int = Field(
        3, ge=1, le=10, description="Samplings a verified chunk may take, the first included."
    )
    speaker_model: str = Field(
        "microsoft/wavlm-base-plus-sv",
        description="Speaker-verification model (transformers audio x-vector) for `f5vi eval`'s speaker "
        "similarity; the demo fallback uses a tiny random WavLM instead.",
    )

    # --- storage -----------------------------------------------------------------------------------
    voices_dir: Path = Field(
        Path("voices"),
        description="The voices that ship with the deployment: listed and used, read-only through the API.",
    )
    read_only_voices_dirs: list[Path] = Field(
        default_factory=list,
        description="More read-only voice directories, searched after voices_dir "
        "(a JSON list: '[\"/srv/voices\"]').",
    )
    lexicon_paths: list[Path] = Field(
        default_factory=list,
        description="Server lexicon files (respellings applied before normalisation, lowest precedence "
        "after a request's and a voice's own; format in docs/text.md), a JSON list: "
        "'[\"/etc/f5vi/brands.lexicon\"]'. A malformed file stops the server at start with file, line "
        "and reason.",
    )
    uploaded_voices_dir: Path | None = Field(
        None,
        description="Where POST /voices stores voices (they can be overwritten and deleted); "
        "default <data_dir>/voices. Must not be one of the read-only directories.",
    )
    default_voice: str | None = Field(
        None, description="Voice used for OpenAI voice names (alloy, echo, ...) without a voice of that id."
    )
    output_dir: Path = Path("output")
    data_dir: Path = Path("data")
    output_ttl_seconds: float = Field(
        24 * 3600.0,
        validation_alias=AliasChoices("F5VI_OUTPUT_TTL", "F5VI_OUTPUT_TTL_SECONDS"),
        description="Seconds an output is kept (env F5VI_OUTPUT_TTL or F5VI_OUTPUT_TTL_SECONDS).",
    )
    confirmed_output_ttl_seconds: float = 600.0
    cleanup_interval_seconds: float = 300.0

    # --- HTTP service ------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str | None = Field(
        None, description="Absolute base URL used in download/confirmation links (default: the request's)."
    )
    api_key: SecretStr | None = Field(None, description="If set, bearer token needed on all but /health.")
    queue_max: int = 64
    http_header_timeout_seconds: float = Field(
        10.0,
        description="A request's line and headers must arrive within this many seconds of the connection "
        "opening (or of the previous response on a kept-alive one); slower clients get 408 and are cut off.",
    )
    http_max_header_bytes: int = Field(64 * 1024, description="Largest request head; larger: 431.")
    http_keep_alive_seconds: int = Field(5, description="Idle kept-alive connections close after this.")
    http_body_idle_timeout_seconds: float = Field(
        30.0,
        description="A request body that sends nothing for this many seconds is answered 408 (a slow upload "
        "that keeps moving is fine).",
    )
    http_max_concurrency: int | None = Field(
        None,
        description="uvicorn's limit_concurrency: beyond this many open connections or running requests, "
        "new requests get 503 at once. Unset: no limit here; set it in the reverse proxy (docs/security.md).",
    )
    max_upload_bytes: int = 20 * 1024 * 1024
    max_request_bytes: int = 25 * 1024 * 1024

    # --- streams (WebSocket, OpenAI streaming) ---------------------------------------------------------
    stream_buffer_pieces: int = Field(
        4, description="Audio pieces a stream holds for a slow reader before synthesis waits (backpressure)."
    )
    stream_stall_timeout_seconds: float = Field(
        60.0, description="A stream whose reader takes nothing for this long is cancelled (frees the engine)."
    )

    shutdown_grace_seconds: float = Field(
        8.0,
        description="On SIGTERM: how long the running job may take to reach its next ODE step (it is "
        "re-queued) and clients to take their last frame, before the process exits anyway.",
    )

    # --- jobs -----------------------------------------------------------------------------------------
    job_max_attempts: int = Field(
        2, description="Starts of one job before a restart that interrupts it marks it failed (1 retry)."
    )
    database_url: str | None = Field(
        None,
        description="The job store: `sqlite:///path` (default: <data_dir>/jobs.sqlite3, one process) or"
        " `postgresql://user:pass@host/db` (several instances share the jobs; outputs must then go to the"
        " bucket, F5VI_S3_BUCKET). See docs/deployment.md.",
    )
    instance_id: str | None = Field(
        None, description="This instance's name as owner of claimed jobs (default: host-pid-random)."
    )
    job_lease_seconds: float = Field(
        30.0,
        description="PostgreSQL store: a claimed job stays this instance's while it renews the lease"
        " (every third of it); a job whose lease expired is taken over by another instance.",
    )
    job_poll_seconds: float = Field(
        1.0,
        description="PostgreSQL store: how often an instance looks for work, kills and changes of jobs it"
        " follows when no NOTIFY arrived (NOTIFY wakes it at once).",
    )
    job_notify: bool = Field(
        True,
        description="PostgreSQL store: LISTEN for the other instances' changes (immediate); off: poll only.",
    )
    job_record_ttl_seconds: float = Field(
        7 * 24 * 3600.0, description="Finished job records (not their audio) are kept this long."
    )
    progress_persist_seconds: float = Field(
        0.5,
        description="Progress of a running job is written to the job database (and then shown) at most"
        " this often.",
    )

    # --- RunPod / delivery -------------------------------------------------------------------------
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_retries: int = 3
    audio_base64_max_bytes: int = 2 * 1024 * 1024
    s3_bucket: str | None = Field(None, description="Upload results to this S3-compatible bucket (RunPod).")
    webhook_api_key: SecretStr | None = Field(
        None, description="Sent as X-API-Key with the webhook (the seed's RUNPOD_WEBHOOK_API_KEY)."
    )
    webhook_timeout_seconds: float = Field(30.0, description="Per-attempt timeout of a webhook POST.")
    s3_prefix: str = Field("f5vi", description="Key prefix of uploaded results in the bucket.")
    s3_endpoint_url: str | None = Field(
        None,
        validation_alias=AliasChoices("F5VI_S3_ENDPOINT_URL", "BUCKET_ENDPOINT_URL"),
        description="S3-compatible endpoint (env F5VI_S3_ENDPOINT_URL, or RunPod's BUCKET_ENDPOINT_URL).",
    )
    s3_access_key_id: SecretStr | None = Field(
        None, validation_alias=AliasChoices("F5VI_S3_ACCESS_KEY_ID", "BUCKET_ACCESS_KEY_ID")
    )
    s3_secret_access_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("F5VI_S3_SECRET_ACCESS_KEY", "BUCKET_SECRET_ACCESS_KEY")
    )
    s3_url_ttl_seconds: float = Field(
        7 * 24 * 3600.0, description="Validity of presigned download URLs (S3 allows at most 7 days)."
    )
    runpod_serve_http: bool = Field(
        True, description="RunPod worker: also serve the HTTP app (downloads, confirmation) on `port`."
    )
    runpod_pod_id: str | None = Field(
        None,
        validation_alias=AliasChoices("F5VI_RUNPOD_POD_ID", "RUNPOD_POD_ID"),
        description="Set by RunPod: links go through this pod's proxy unless public_base_url is set.",
    )
    runpod_progress_url: str | None = Field(
        None,
        validation_alias=AliasChoices("F5VI_RUNPOD_PROGRESS_URL", "RUNPOD_WEBHOOK_POST_OUTPUT"),
        description="Set by RunPod (RUNPOD_WEBHOOK_POST_OUTPUT): where the SDK posts progress; unset, "
        "progress is only logged.",
    )
    runpod_concurrency: int | None = Field(
        None,
        ge=1,
        description="RunPod jobs one worker takes at once (the SDK's concurrency_modifier); they share the "
        "engine's batches. Unset: 8 on a GPU, 1 on CPU.",
    )
    runpod_job_timeout_seconds: float = Field(
        3600.0, description="RunPod worker: give up waiting for a job after this long (it is cancelled)."
    )

    # --- logging -----------------------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = False

    @property
    def database_path(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    @property
    def job_database_url(self) -> str:
        """``database_url``, or the SQLite file in the data directory."""
        return self.database_url or f"sqlite:///{self.database_path}"

    @property
    def shared_job_store(self) -> bool:
        return self.job_database_url.startswith(("postgresql://", "postgres://"))

    @property
    def demo_model_path(self) -> Path:
        """Under the data dir unless set: that is the one folder a deployment must make writable
        (the image's working directory is not), and the current directory is never used."""
        return self.demo_model_dir or self.data_dir / "models" / "demo"

    @property
    def uploaded_voices_path(self) -> Path:
        return self.uploaded_voices_dir if self.uploaded_voices_dir is not None else self.data_dir / "voices"

    @property
    def read_only_voice_dirs(self) -> list[Path]:
        """In resolution order: the shipped voices first."""
        return [self.voices_dir, *self.read_only_voices_dirs]

    def ensure_dirs(self) -> None:
        """The writable directories (read-only voice directories belong to the operator)."""
        for directory in (self.output_dir, self.data_dir, self.uploaded_voices_path):
            directory.mkdir(parents=True, exist_ok=True)
