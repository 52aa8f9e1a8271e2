"""Every domain error carries its code and HTTP status; anything else is an internal error."""

from __future__ import annotations

import pytest

from f5vi.engine import errors as engine
from f5vi.errors import F5viError, InternalError, as_f5vi_error, scrub
from f5vi.jobs import errors as jobs
from f5vi.storage import InvalidFilenameError, StorageConfigError
from f5vi.voices import errors as voices

STATUSES = [
    (jobs.InvalidJobIdError, "invalid_job_id", 422),
    (jobs.JobConflictError, "job_conflict", 409),
    (jobs.JobFinishedError, "job_finished", 409),
    (jobs.JobNotSucceededError, "job_not_succeeded", 409),
    (jobs.InvalidConfirmationTokenError, "invalid_confirmation_token", 403),
    (jobs.UnknownJobError, "job_not_found", 404),
    (jobs.QueueFullError, "queue_full", 429),
    (jobs.ServiceUnavailableError, "service_unavailable", 503),
    (voices.VoiceNotFoundError, "voice_not_found", 404),
    (voices.InvalidVoiceNameError, "invalid_voice_name", 400),
    (voices.VoiceExistsError, "voice_exists", 409),
    (voices.VoiceUploadTooLargeError, "voice_upload_too_large", 413),
    (voices.InvalidVoiceUploadError, "invalid_voice_upload", 422),
    (voices.TranscriptionUnavailableError, "transcription_unavailable", 422),
    (voices.VoiceUnreadableError, "voice_unreadable", 500),
    (InvalidFilenameError, "invalid_filename", 400),
    (StorageConfigError, "storage_misconfigured", 500),
    (engine.InvalidTextError, "invalid_text", 422),
    (engine.InvalidParameterError, "invalid_parameter", 422),
    (engine.InvalidReferenceError, "invalid_reference", 422),
    (engine.ModelLoadError, "model_load_failed", 503),
    (engine.SynthesisCancelled, "cancelled", 409),
    (engine.EngineError, "engine_error", 500),
]


@pytest.mark.parametrize(("kind", "code", "status"), STATUSES)
def test_each_error_declares_its_code_and_status(kind: type[F5viError], code: str, status: int) -> None:
    assert issubclass(kind, F5viError)
    assert (kind.code, kind.http_status) == (code, status)
    instance = kind.__new__(kind)  # several take a job or counts; the class facts are what matter
    assert instance.is_internal == (status >= 500 and status not in (503, 507))


def test_a_code_given_at_raise_time_wins() -> None:
    error = engine.EngineError("boom", code="internal_error")
    assert error.code == "internal_error" and engine.EngineError.code == "engine_error"


def test_retry_hints_travel_as_headers() -> None:
    assert jobs.QueueFullError(3, 7).headers == {"Retry-After": "7"}
    assert jobs.ServiceUnavailableError("loading", retry_after_seconds=5).headers == {"Retry-After": "5"}
    assert jobs.ServiceUnavailableError("failed").headers == {}


def test_anything_else_becomes_an_internal_error_that_names_only_its_type() -> None:
    error = as_f5vi_error(KeyError("/srv/secret/path"))
    assert isinstance(error, InternalError) and error.code == "internal_error" and error.is_internal
    assert "KeyError" in error.message and "/srv" not in error.message
    ours = engine.InvalidTextError("text is empty")
    assert as_f5vi_error(ours) is ours


def test_invalid_text_is_also_a_value_error_for_schema_validators() -> None:
    assert issubclass(engine.InvalidTextError, ValueError)
    assert scrub("cannot read /home/app/voices/x.wav") == "cannot read x.wav"
