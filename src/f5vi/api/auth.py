"""Optional bearer-token authentication (``F5VI_API_KEY``) on every route except the exempt ones.

Enforced by a small ASGI middleware, before routing and before any body is read, so an
unauthenticated client cannot make the server parse (or buffer) anything. Routes also declare the
``HTTPBearer`` scheme as a dependency so OpenAPI/Swagger show it; that dependency checks nothing.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable

from fastapi.security import APIKeyQuery, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from f5vi.api.errors import ApiError

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="Required when the server sets F5VI_API_KEY: `Authorization: Bearer <key>`.",
)

download_token_scheme = APIKeyQuery(
    name="token",
    auto_error=False,
    scheme_name="downloadToken",
    description="Instead of the API key on download and confirmation URLs: the job's secret `token` from "
    "its `download_url` / `confirmation_url` (a wrong one: 403).",
)
"""Documents the capability-URL alternative to the key (checked by the routes, not by this object)."""

PUBLIC_PATHS: frozenset[str] = frozenset(
    {"/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/", "/ui"}
)
"""Readiness probes, the API description and the playground's entry need no key (all public in the
repo; the playground asks for the key itself and sends it on its API calls)."""

PUBLIC_PREFIXES: tuple[str, ...] = ("/docs-assets/", "/ui/")
"""Static Swagger UI and playground files."""

TOKEN_PATH_PREFIXES: tuple[str, ...] = ("/output/", "/confirm-download/")
"""Capability URLs: with a ``token`` query parameter these pass without the key, and the route itself
checks the token against the job's secret (so a webhook receiver holding only the URLs can download
and confirm). Without a token they need the key like everything else."""

SUBTITLES_PATH_RE = re.compile(r"/tts/[^/]+/subtitles")
"""A job's subtitles are a capability URL too (``subtitle_urls`` carry the job's token)."""

TOKEN_AUTH_STATE = "f5vi_token_auth"
"""Set in ``request.state`` when a request was let through on its URL token instead of the key."""


def token_matches(header_value: str | None, api_key: str) -> bool:
    """Constant-time check of an ``Authorization`` header against the key."""
    if not header_value:
        return False
    scheme, _, token = header_value.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return hmac.compare_digest(token.strip().encode("utf-8"), api_key.encode("utf-8"))


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, *, api_key: str, public_paths: Iterable[str] = PUBLIC_PATHS) -> None:
        self.app = app
        self.api_key = api_key
        self.public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in self.public_paths or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        if not token_matches(header, self.api_key):
            if _carries_token(scope):
                scope.setdefault("state", {})[TOKEN_AUTH_STATE] = True
                await self.app(scope, receive, send)
                return
            response = ApiError(
                401,
                "unauthorized",
                "missing or invalid API key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": 'Bearer realm="f5vi"'},
            ).response()
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _carries_token(scope: Scope) -> bool:
    path = scope.get("path", "")
    if not path.startswith(TOKEN_PATH_PREFIXES) and not SUBTITLES_PATH_RE.fullmatch(path):
        return False
    query = scope.get("query_string", b"").decode("latin-1")
    return any(part.startswith("token=") and len(part) > len("token=") for part in query.split("&"))
