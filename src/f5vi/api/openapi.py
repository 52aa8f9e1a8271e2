"""The committed ``openapi.json``: export it, and check it still matches the app.

Building the document needs no model: :func:`~f5vi.api.app.create_app` loads nothing until its
lifespan runs. The schema does not depend on settings, so any environment exports the same file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from f5vi.config import Settings


def build_openapi() -> dict[str, Any]:
    from f5vi.api.app import create_app

    return create_app(Settings()).openapi()


def render_openapi(schema: dict[str, Any] | None = None) -> str:
    return json.dumps(schema if schema is not None else build_openapi(), indent=2, ensure_ascii=False) + "\n"


def write_openapi(path: Path) -> None:
    Path(path).write_text(render_openapi(), encoding="utf-8")


def openapi_matches(path: Path) -> bool:
    """True if the file at ``path`` is exactly what :func:`write_openapi` would write now."""
    path = Path(path)
    return path.is_file() and path.read_text(encoding="utf-8") == render_openapi()
