"""The committed ``openapi.json``: export it, and check it still matches the app.

Building the document needs no model: :func:`~f5vi.api.app.create_app` loads nothing until its
lifespan runs. The committed file describes the keyed deployment (``F5VI_API_KEY`` set: bearer
security on every operation); apart from that the schema does not depend on settings, so any
environment exports the same file. A server without a key serves its own ``/openapi.json`` without
the security requirements and 401 answers it never gives (:mod:`f5vi.api.served_schema`), so clients
and contract testers see the server as configured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from f5vi.config import Settings

DOCUMENTED_KEY = "documented"
"""Any key: the exported schema is the keyed deployment's (the key itself appears nowhere in it)."""


def build_openapi() -> dict[str, Any]:
    from f5vi.api.app import create_app

    return create_app(Settings(api_key=SecretStr(DOCUMENTED_KEY))).openapi()


def render_openapi(schema: dict[str, Any] | None = None) -> str:
    return json.dumps(schema if schema is not None else build_openapi(), indent=2, ensure_ascii=False) + "\n"


def write_openapi(path: Path) -> None:
    Path(path).write_text(render_openapi(), encoding="utf-8")


def openapi_matches(path: Path) -> bool:
    """True if the file at ``path`` is exactly what :func:`write_openapi` would write now."""
    path = Path(path)
    return path.is_file() and path.read_text(encoding="utf-8") == render_openapi()
