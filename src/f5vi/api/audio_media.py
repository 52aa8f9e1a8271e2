"""How the OpenAPI document describes audio bodies, so that generated clients return the bytes.

Client generators know only a few media types. openapi-python-client, for one, reads
``application/json``, ``application/octet-stream`` and ``text/*``: a response documented only as
``audio/wav`` is left out of the client (so a successful download raises with
``raise_on_unexpected_status``), and of several types it takes the first one it knows, so
``text/event-stream`` after the audio types made it parse speech as text. Listing
``application/octet-stream`` first gives every generated client the bytes as a file.

The response itself is always labelled with its real audio type, whatever ``Accept`` says: the
OpenAI SDK sends ``Accept: application/octet-stream`` for speech and OpenAI answers ``audio/mpeg``,
and players and tools pick the decoder or file extension from that type.
"""

from __future__ import annotations

from typing import Any

OCTET_STREAM = "application/octet-stream"
BINARY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}
GENERIC_NOTE = (
    " The `Content-Type` is the audio type of the format; `application/octet-stream` is listed first "
    "for client generators, which know no audio types, so that they return the bytes."
)


def audio_content(
    *media_types: str, extra: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """OpenAPI ``content`` for an audio body: ``application/octet-stream`` first, then ``media_types``
    (all binary strings), then ``extra`` (media type -> media object, e.g. an SSE variant)."""
    return {OCTET_STREAM: BINARY, **{media: BINARY for media in media_types}, **(extra or {})}
