"""Audio bodies are documented so that client generators return the bytes."""

from __future__ import annotations

from f5vi.api.audio_media import OCTET_STREAM
from f5vi.api.openapi import build_openapi


def test_every_binary_response_lists_octet_stream_first() -> None:
    binary_responses = []
    for path, item in build_openapi()["paths"].items():
        for method, operation in item.items():
            for code, response in operation["responses"].items():
                content = response.get("content", {})
                if any(m.get("schema", {}).get("format") == "binary" for m in content.values()):
                    binary_responses.append((path, method, code))
                    assert next(iter(content)) == OCTET_STREAM, (path, method, code)
    downloads = {("/output/{filename}", "get", "200"), ("/output/{filename}", "get", "206")}
    assert downloads <= set(binary_responses)
    assert ("/v1/audio/speech", "post", "200") in binary_responses
