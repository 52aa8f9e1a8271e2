"""The committed ``openapi.json``: export it, and check it still matches the app.

Building the document needs no model: :func:`~f5vi.api.app.create_app` loads nothing until its
lifespan runs. The committed file describes the keyed deployment (``F5VI_API_KEY`` set: bearer
security on every operation); apart from that the schema does not depend on settings, so any
environment exports the same file. A server without a key serves its own ``/openapi.json`` without
the security requirements and 401 answers it never gives (:func:`describe_keyless`), so clients and
contract testers see the server as configured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr

from f5vi.config import Settings

DOCUMENTED_KEY = "documented"
"""Any key: the exported schema is the keyed deployment's (the key itself appears nowhere in it)."""


def build_openapi() -> dict[str, Any]:
    from f5vi.api.app import create_app

    return create_app(Settings(api_key=SecretStr(DOCUMENTED_KEY))).openapi()


def describe_keyless(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` as a server without ``F5VI_API_KEY`` behaves: no security schemes or requirements,
    no 401 answers (capability URLs need no token either: without a key nothing is checked)."""
    schema.get("components", {}).pop("securitySchemes", None)
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation.pop("security", None)
                operation.get("responses", {}).pop("401", None)
    return schema


def install_keyless_openapi(app: FastAPI) -> None:
    """Serve :func:`describe_keyless` of the app's schema (built once, like FastAPI's own)."""
    build = app.openapi

    def keyless_openapi() -> dict[str, Any]:
        if not getattr(app.state, "keyless_openapi", False):
            describe_keyless(build())
            app.state.keyless_openapi = True
        return build()

    app.openapi = keyless_openapi  # type: ignore[method-assign]


def render_openapi(schema: dict[str, Any] | None = None) -> str:
    return json.dumps(schema if schema is not None else build_openapi(), indent=2, ensure_ascii=False) + "\n"


def write_openapi(path: Path) -> None:
    Path(path).write_text(render_openapi(), encoding="utf-8")


def openapi_matches(path: Path) -> bool:
    """True if the file at ``path`` is exactly what :func:`write_openapi` would write now."""
    path = Path(path)
    return path.is_file() and path.read_text(encoding="utf-8") == render_openapi()
