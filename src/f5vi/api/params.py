"""Path parameters with the patterns the server enforces, so the OpenAPI document states them.

The patterns are documentation only: the domain code checks them and answers with its own error
(``404`` for a job id that cannot exist, ``400 invalid_voice_name`` / ``400 invalid_filename`` with the
reason), which a pydantic ``pattern`` would turn into a generic 422.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from f5vi.jobs.models import JOB_ID_PATTERN
from f5vi.storage import SAFE_FILENAME_PATTERN
from f5vi.voices.names import MAX_VOICE_ID_CHARS, VOICE_ID_PATTERN

JobIdPath = Annotated[
    str,
    Path(description="A job id (unknown or malformed: 404).", json_schema_extra={"pattern": JOB_ID_PATTERN}),
]
VoiceIdPath = Annotated[
    str,
    Path(
        description="A voice id (see `GET /voices`).",
        json_schema_extra={"pattern": VOICE_ID_PATTERN, "maxLength": MAX_VOICE_ID_CHARS},
    ),
]
OutputFilenamePath = Annotated[
    str,
    Path(
        description="The `filename` of a finished job's result.",
        json_schema_extra={"pattern": SAFE_FILENAME_PATTERN},
    ),
]
