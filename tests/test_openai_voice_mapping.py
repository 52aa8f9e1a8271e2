"""OpenAI voice names map to a voice of that id, else F5VI_DEFAULT_VOICE, else the first voice."""

from __future__ import annotations

from pathlib import Path

from f5vi.api.routers.openai_speech import resolve_voice_name
from f5vi.voices.library import VoiceLibrary
from server_helpers import write_voice


def test_openai_names_map_to_installed_default_or_first_voice(tmp_path: Path) -> None:
    for voice_id in ("b_voice", "a_voice", "nova"):
        write_voice(tmp_path, voice_id)
    library = VoiceLibrary(tmp_path, None, 12.0)
    assert resolve_voice_name("nova", library) == "nova"  # a voice with that id exists
    assert resolve_voice_name("alloy", library) == "a_voice"  # first in id order
    assert resolve_voice_name("alloy", library, default_voice="b_voice") == "b_voice"
    assert resolve_voice_name("b_voice", library, default_voice="a_voice") == "b_voice"  # not an OpenAI name
