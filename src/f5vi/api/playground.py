"""The playground: a small web page at ``/ui`` to try voices, text and streaming in a browser.

Plain HTML/CSS/JS shipped inside the package (``f5vi/api/static/playground``), served by the app
itself, so it works offline and from a wheel or the docker image. The page only calls the public
API (with the key the user types in, kept in the page's memory). Its routes are not API operations
and are left out of the OpenAPI schema; the files need no key (the key is entered on the page).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

PLAYGROUND_URL = "/ui"


def install_playground(app: FastAPI) -> None:
    """Serve the page under ``/ui/`` and send ``/`` there."""
    directory = files("f5vi.api") / "static" / "playground"
    app.mount(PLAYGROUND_URL, StaticFiles(directory=str(directory), html=True), name="playground")

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> RedirectResponse:
        root_path = request.scope.get("root_path", "")
        return RedirectResponse(f"{root_path}{PLAYGROUND_URL}/", status_code=307)
