"""OpenAI voice names map to a voice of that id, else F5VI_DEFAULT_VOICE, else the first voice; the
voice listing (``GET /v1/audio/voices``) shows the same mapping."""

from __future__ import annotations

from pathlib import Path

from f5vi.api.openai_names import OPENAI_VOICES, resolve_voice_name
from f5vi.api.routers.openai_voices import speech_voices
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


def test_speech_voices_follow_the_library_and_default_voice(tmp_path: Path) -> None:
    library = VoiceLibrary(tmp_path, None, 12.0)
    assert speech_voices(library, None) == []  # no voice installed: OpenAI names cannot speak either
    for voice_id in ("b_voice", "a_voice", "nova"):
        write_voice(tmp_path, voice_id)
    listed = {v.id: v for v in speech_voices(library, None)}
    assert list(listed)[:3] == ["a_voice", "b_voice", "nova"]
    assert listed["nova"].voice == "nova" and listed["nova"].openai_alias  # installed under that name
    assert listed["alloy"].voice == "a_voice"  # first voice in id order
    assert len(listed) == 3 + len(OPENAI_VOICES) - 1
    with_default = {v.id: v for v in speech_voices(library, "b_voice")}
    assert with_default["alloy"].voice == "b_voice" and with_default["nova"].voice == "nova"
