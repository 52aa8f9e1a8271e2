"""OpenAPI ``responses=`` entries for the error statuses a route can answer."""

from __future__ import annotations

from typing import Any

from f5vi.api.schemas import ErrorResponse

_DESCRIPTIONS = {
    400: "Malformed input (invalid JSON, unsafe name)",
    401: "Missing or invalid API key (only when F5VI_API_KEY is set)",
    403: "Wrong confirmation token",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflicts with the job's current state or an existing resource",
    410: "The output was removed by retention",
    413: "Request body or upload too large",
    416: "Requested range not satisfiable",
    422: "Invalid parameters (validation error; a text with nothing that can be read aloud: invalid_text)",
    429: "Job queue (or, for /normalize, the previews in progress) full; see Retry-After",
    500: "Internal error",
    503: "Engine not available (loading failed or shutting down) or out of memory; see Retry-After",
    507: "No space left on the server's disk (job database, voices or outputs): insufficient_storage; "
    "see Retry-After",
}


def sse_content(
    description: str, data_schema: dict[str, Any], *, events: list[str] | None, example: str
) -> dict[str, Any]:
    """``text/event-stream`` content whose ``schema`` describes one event, as OpenAPI 3.1 tools read it
    (3.2 would call it ``itemSchema``): ``event`` (one of ``events``; None: unnamed, i.e. ``message``),
    ``id``, ``retry`` and ``data``, a JSON document described by ``data_schema``."""
    event: dict[str, Any] = {"type": "string", "enum": events} if events else {"const": "message"}
    return {
        "text/event-stream": {
            "schema": {
                "type": "object",
                "description": description,
                "required": ["event", "data"],
                "properties": {
                    "event": event,
                    "id": {"type": "string"},
                    "retry": {"type": "integer"},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": data_schema,
                    },
                },
            },
            "example": example,
        }
    }


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Error shape for ``codes`` plus the 401 and 500 every protected route can answer."""
    wanted = sorted(set(codes) | {401, 500})
    return {code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]} for code in wanted}


def public_error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    wanted = sorted(set(codes) | {500})
    return {code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]} for code in wanted}
