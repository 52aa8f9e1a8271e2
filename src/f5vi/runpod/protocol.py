"""RunPod's job protocol as f5vi speaks it: idempotency keys and failed-job outputs."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

IDEMPOTENCY_PREFIX = "runpod:"
LOCAL_TEST_JOB_ID = "local_test"
"""The id the SDK gives every ``--test_input``/``test_input.json`` run: never an idempotency key."""


def idempotency_key(runpod_job_id: str) -> str | None:
    """``runpod:<id>`` for a real RunPod job; None for the SDK's local test runs (all share one id)."""
    return None if runpod_job_id in ("", LOCAL_TEST_JOB_ID) else f"{IDEMPOTENCY_PREFIX}{runpod_job_id}"


class JobFailedError(Exception):
    """A job that ends in an error output; ``message`` is safe to show to the client."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        job_id: str | None = None,
        refresh: bool = False,
        details: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.job_id = job_id
        self.refresh = refresh
        self.details = details

    def output(self) -> dict[str, Any]:
        out = error_output(self.code, self.message, self.details)
        if self.job_id:
            out["job_id"] = self.job_id
        if self.refresh:
            out["refresh_worker"] = True
        return out


def error_output(code: str, message: str, details: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """``{"error": "<JSON of {code, message[, details]}>"}``: the SDK reports the job FAILED.

    The value is a JSON *string*, not an object: runpod-python types the job error as a string (its
    local API answers 500 to a dict) and formats its own handler exceptions the same way, as a JSON
    string of an object. Clients ``JSON.parse(error)`` to get the code.
    """
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": json.dumps(error, ensure_ascii=False)}


def invalid_input(exc: ValidationError) -> JobFailedError:
    """Field, message and type of each problem; never the offending value (it may be the text)."""
    details = [
        {
            "field": ".".join(str(p) for p in err.get("loc", ())) or "input",
            "message": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3]) or "invalid input"
    return JobFailedError("validation_error", message, details=details)
