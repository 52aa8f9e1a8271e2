"""``FileResponse`` whose Range errors use the API's error shape.

Starlette serves byte ranges well (single, multiple, merged) but answers a malformed ``Range`` with a
plain-text 400 and an unsatisfiable one with an empty 416. This wrapper keeps Starlette's serving and
rewrites just those two answers into ``{"error": {"code", "message"}}`` at the ASGI level, so no
private Starlette method is called and Starlette's own parsing stays the only one.
"""

from __future__ import annotations

import json

from starlette.responses import FileResponse
from starlette.types import Message, Receive, Scope, Send

from f5vi.api.errors import error_body

_RANGE_ERRORS = {
    400: ("invalid_range", "malformed Range header"),
    416: ("range_not_satisfiable", "requested range is outside the file"),
}


class AudioFileResponse(FileResponse):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        replaced = False

        async def shaped(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] in _RANGE_ERRORS:
                replaced = True
                code, text = _RANGE_ERRORS[message["status"]]
                body = json.dumps(error_body(code, text)).encode()
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() == b"content-range"]
                headers += [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send({"type": "http.response.start", "status": message["status"], "headers": headers})
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            if replaced:  # the original body of the replaced answer
                return
            await send(message)

        await super().__call__(scope, receive, shaped)
