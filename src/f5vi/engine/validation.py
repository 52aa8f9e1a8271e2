"""The checks every synthesis request passes, before and without any model work.

One function for all callers: the job system runs it at submit time (also while the model is still
loading), the synthesizer again before it starts, so what is refused and how it is worded cannot
differ between the HTTP API, the WebSocket stream, the OpenAI endpoint, RunPod and the CLI.
"""

from __future__ import annotations

from f5vi.engine.errors import InvalidParameterError, InvalidReferenceError, InvalidTextError
from f5vi.engine.text.normalizer import can_be_read_aloud
from f5vi.engine.text.script import TextType, parse_script
from f5vi.engine.text.segments import SpeechScript
from f5vi.engine.types import SynthesisRequest

SPEED_RANGE = (0.3, 2.0)
NFE_RANGE = (1, 128)
CFG_RANGE = (0.0, 10.0)
SWAY_RANGE = (-1.0, 1.0)
CROSS_FADE_RANGE = (0.0, 1.0)
ODE_METHODS = ("euler", "midpoint")


def require_text(text: str) -> str:
    """``text`` if it has something to say; empty or whitespace-only text raises InvalidTextError."""
    if not text or not text.strip():
        raise InvalidTextError("text is empty")
    return text


def check_text(text: str, max_chars: int, text_type: TextType = "auto") -> SpeechScript:
    """Refuse empty (or whitespace-only) text, text over the configured length, malformed SSML, and
    text (or a voice's part of it) with nothing that could be read aloud (NUL, emoji, zero-width or
    combining characters only, ``[`` x 10000): refused at submit, not after a wait in the queue.
    Returns the parsed script, so a caller that needs its voices does not parse the text again."""
    require_text(text)
    if len(text) > max_chars:
        raise InvalidTextError(
            f"text has {len(text)} characters; the limit is {max_chars} (the server's "
            "F5VI_MAX_TEXT_CHARS): split it into several requests"
        )
    script = parse_script(text, text_type)
    segments = [s for s in script.segments if s.text.strip()]
    for segment in segments:
        if not can_be_read_aloud(segment.text):
            where = f"the part of voice [{segment.voice}]" if segment.voice else "the text"
            raise InvalidTextError(
                f"{where} has nothing that can be read aloud (no letter, digit or readable symbol)"
            )
    if not segments:
        raise InvalidTextError("the text has nothing that can be read aloud")
    return script


def validate_request(request: SynthesisRequest, max_text_chars: int) -> None:
    """Raise the typed error for the first thing in ``request`` that synthesis would refuse."""
    _check_range("speed", request.speed, SPEED_RANGE)
    _check_range("nfe_step", request.nfe_step, NFE_RANGE)
    _check_range("cfg_strength", request.cfg_strength, CFG_RANGE)
    _check_range("sway_sampling_coef", request.sway_sampling_coef, SWAY_RANGE)
    _check_range("cross_fade_seconds", request.cross_fade_seconds, CROSS_FADE_RANGE)
    if request.ode_method not in ODE_METHODS:
        raise InvalidParameterError(f"ode_method must be one of {', '.join(ODE_METHODS)}")
    if request.seed is not None and not 0 <= request.seed < 2**32:
        raise InvalidParameterError("seed must be in [0, 2**32)")
    script = check_text(request.text, max_text_chars, request.text_type)
    if request.reference.transcript is not None and not request.reference.transcript.strip():
        raise InvalidReferenceError("the reference transcript is empty")
    for tag in script.voices():
        reference = request.reference_for(tag)
        if reference is None:
            raise InvalidReferenceError(f"the text's tag [{tag}] names a voice without a reference")
        if reference.transcript is not None and not reference.transcript.strip():
            raise InvalidReferenceError(f"the transcript of voice {tag!r} is empty")


def _check_range(name: str, value: float, bounds: tuple[float, float]) -> None:
    low, high = bounds
    if not (low <= value <= high):  # also rejects NaN
        raise InvalidParameterError(f"{name} must be between {low} and {high}, got {value}")
