"""The ``/openapi.json`` a server serves: the schema of the server as configured.

The committed ``openapi.json`` (:mod:`f5vi.api.openapi`) describes the keyed deployment; a server started
without ``F5VI_API_KEY`` requires no token, so its own document must not say it does (clients and contract
testers such as schemathesis would otherwise expect 401s it never gives).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


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
