"""Multipart forms whose text fields must really be in their charset (UTF-8 unless declared).

Starlette decodes a multipart text field with the request's charset and, when the bytes are not valid
in it, silently falls back to latin-1: ``Xin \\xed\\xa0\\x80 ch\\xff\\xfeao`` became the transcript
``Xin Ã­ Â…`` and was stored. Here such a field keeps its raw bytes instead, so the route's ``str``
field refuses it in validation (422, ``string_unicode``, naming the field) before anything is stored.

Used through :class:`StrictFormRoute` (FastAPI's documented way to give routes their own ``Request``
class). It relies on Starlette's parser internals (``_current_part``, ``_charset``, ``_get_form``);
``tests/api/test_api_voice_protection.py`` pins the behaviour.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from contextlib import aclosing
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser


class StrictMultiPartParser(MultiPartParser):
    """Starlette's parser, minus the latin-1 fallback for text fields."""

    def on_part_end(self) -> None:
        part = self._current_part
        if part.file is not None:
            super().on_part_end()
            return
        try:
            value: str | bytes = part.data.decode(self._charset or "utf-8")
        except UnicodeDecodeError:
            value = bytes(part.data)  # a ``str`` field refuses this: "unable to parse raw data as unicode"
        self.items.append((part.field_name, value))  # type: ignore[arg-type]


class StrictFormRequest(Request):
    async def _get_form(
        self,
        *,
        max_files: int | float = 1000,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> FormData:
        if self._form is None:
            content_type, _ = parse_options_header(self.headers.get("Content-Type"))
            if content_type == b"multipart/form-data":
                try:
                    async with aclosing(self.stream()) as stream:
                        parser = StrictMultiPartParser(
                            self.headers,
                            stream,
                            max_files=max_files,
                            max_fields=max_fields,
                            max_part_size=max_part_size,
                        )
                        self._form = await parser.parse()
                except MultiPartException as exc:
                    raise HTTPException(status_code=400, detail=exc.message) from None
        return await super()._get_form(
            max_files=max_files, max_fields=max_fields, max_part_size=max_part_size
        )


class StrictFormRoute(APIRoute):
    """A route whose multipart text fields are decoded strictly (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictFormRequest(request.scope, request.receive))

        return strict_handler
