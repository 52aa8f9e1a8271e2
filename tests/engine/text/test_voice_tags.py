"""The ``[voice_id]`` tag grammar and the engine's checks of a multi-voice request (no model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from f5vi.engine.errors import InvalidReferenceError, InvalidTextError
from f5vi.engine.text.voice_tags import (
    MAX_VOICES_PER_TEXT,
    VOICE_ID_PATTERN,
    VoiceSegment,
    split_voice_tags,
    tagged_voices,
)
from f5vi.engine.types import ReferenceVoice, SynthesisRequest
from f5vi.engine.validation import validate_request
from f5vi.voices.library import VOICE_ID_RE

Seg = VoiceSegment


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        # no tags: the text itself, unchanged (whitespace and all)
        ("  Xin chào.\n Tạm biệt. ", [Seg(None, "  Xin chào.\n Tạm biệt. ")]),
        # text before the first tag is the request's own voice
        (
            "Mở đầu. [a] Một. [b_2.x-y] Hai.",
            [Seg(None, "Mở đầu. "), Seg("a", " Một. "), Seg("b_2.x-y", " Hai.")],
        ),
        # tag at the start, tags adjacent, tag at the end: the empty segments go
        ("[a] Một. [b][c] Hai. [d]", [Seg("a", " Một. "), Seg("c", " Hai. ")]),
        ("[a]Một[b]Hai", [Seg("a", "Một"), Seg("b", "Hai")]),
        # "[[" is a literal "[", also before something shaped like a tag
        ("Xem [[1] và [[a].", [Seg(None, "Xem [1] và [a].")]),
        ("[[[a] Một", [Seg(None, "["), Seg("a", " Một")]),
        ("a [[[[ b", [Seg(None, "a [[ b")]),
        # what is not "[" + voice id + "]" is text as it is
        ("[ghi chú] [a b] [] [-x] a[b ]c]", [Seg(None, "[ghi chú] [a b] [] [-x] a[b ]c]")]),
        (f"[{'a' * 65}] x", [Seg(None, f"[{'a' * 65}] x")]),  # longer than any voice id
        ("Một [a]\n\nHai", [Seg(None, "Một "), Seg("a", "\n\nHai")]),
    ],
)
def test_split_voice_tags(text: str, segments: list[VoiceSegment]) -> None:
    assert split_voice_tags(text) == segments


@pytest.mark.parametrize("text", ["[a]", "[a] [b]  \n [c]", "", "  "])
def test_only_tags_has_nothing_to_say(text: str) -> None:
    with pytest.raises(InvalidTextError, match=r"nothing to say besides voice tags.*'\[\['"):
        split_voice_tags(text)


def test_tagged_voices_are_distinct_in_order_and_bounded() -> None:
    assert tagged_voices(split_voice_tags("x [b] y [a] z [b] w")) == ("b", "a")
    assert tagged_voices(split_voice_tags("no tags")) == ()
    many = " ".join(f"[v{i}] câu {i}." for i in range(MAX_VOICES_PER_TEXT))
    assert len(tagged_voices(split_voice_tags(many))) == MAX_VOICES_PER_TEXT
    with pytest.raises(InvalidTextError, match="different voices"):
        tagged_voices(split_voice_tags(many + " [one_more] câu."))


def test_tag_ids_are_exactly_the_voice_librarys_ids() -> None:
    assert VOICE_ID_RE.pattern == VOICE_ID_PATTERN


def _request(text: str, **voices: ReferenceVoice) -> SynthesisRequest:
    own = ReferenceVoice(audio_path=Path("own.wav"), transcript="xin chào", voice_id="own")
    return SynthesisRequest(text=text, reference=own, voices=tuple(voices.items()))


def test_validation_wants_a_reference_for_every_tag() -> None:
    other = ReferenceVoice(audio_path=Path("b.wav"), transcript="tạm biệt", voice_id="b")
    validate_request(_request("Một. [b] Hai.", b=other), 1000)
    with pytest.raises(InvalidReferenceError, match=r"\[c\]"):
        validate_request(_request("Một. [b] Hai. [c] Ba.", b=other), 1000)
    with pytest.raises(InvalidReferenceError, match="transcript of voice 'b' is empty"):
        validate_request(_request("[b] Hai.", b=ReferenceVoice(Path("b.wav"), "  ", "b")), 1000)
    with pytest.raises(InvalidTextError, match="nothing to say besides voice tags"):
        validate_request(_request("[b] ", b=other), 1000)
    assert _request("x", b=other).reference_for("b") is other
    assert _request("x").reference_for(None).voice_id == "own"  # type: ignore[union-attr]
    assert _request("x").reference_for("b") is None
