"""OpenAI's model and voice names, and what they mean on this server (one model, a voice library).

Unmodified OpenAI code names OpenAI's models (``tts-1``) and built-in voices (``alloy``); the speech
endpoint accepts them, and the listing endpoints (``GET /v1/models``, ``GET /v1/audio/voices``) show
them, so tools that list before they speak offer names that work.
"""

from __future__ import annotations

import contextlib

from f5vi.voices.library import VoiceLibrary

OPENAI_VOICES = frozenset(
    {
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "fable",
        "nova",
        "onyx",
        "sage",
        "shimmer",
        "verse",
        "marin",
        "cedar",
    }
)
"""OpenAI's built-in voice names (mapped to a voice of this server by :func:`resolve_voice_name`)."""

SPEECH_MODELS = ("f5-tts", "f5vi", "tts-1", "tts-1-hd", "gpt-4o-mini-tts")
"""Model ids listed by ``GET /v1/models``: ours first (``f5-tts`` is the speech default), then
OpenAI's speech models. ``POST /v1/audio/speech`` accepts these and any other string: the server
has one model, whatever the name."""


def resolve_voice_name(name: str, library: VoiceLibrary, default_voice: str | None = None) -> str:
    """A voice id of the library for ``name``: an OpenAI name picks the voice of that id, else
    ``F5VI_DEFAULT_VOICE``, else the library's first voice. Other names are returned unchanged."""
    if name.lower() in OPENAI_VOICES:
        with contextlib.suppress(Exception):
            if library.exists(name.lower()):
                return name.lower()
        return library.default_voice_id(default_voice)
    return name
