"""How verification results (``verify``) appear in HTTP answers: the schema and the one-shot header."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

VERIFICATION_HEADER = "X-F5VI-Verification"


class ChunkVerificationInfo(BaseModel):
    """How the kept attempt of one chunk did (requests with `verify`)."""

    chunk: int = Field(description="Chunk index, in text order.")
    cer: float = Field(description="Character error rate of its transcript against its text (canonicalised).")
    attempts: int = Field(description="Samplings the chunk took (1: it passed at once).")
    seed: int = Field(description="Seed of the kept attempt (the request's seed for the first attempt).")
    transcript: str = Field(description="What the speech recogniser heard in the kept attempt.")
    passed: bool = Field(description="`cer` is at most `F5VI_VERIFY_MAX_CER`.")


def verification_headers(verification: Sequence[dict[str, Any]] | None) -> dict[str, str]:
    """One-shot OpenAI speech: the per-chunk verification without transcripts (a header is ASCII)."""
    if verification is None:
        return {}
    short = [{k: v for k, v in item.items() if k != "transcript"} for item in verification]
    return {VERIFICATION_HEADER: json.dumps(short, separators=(",", ":"))}
