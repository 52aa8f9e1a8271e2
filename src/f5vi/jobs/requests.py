"""Client parameters -> one checked, complete synthesis request, the same for every front door.

A request has three shapes, each for one reason:

- :class:`TTSInput`: what a client chose (``None`` = the server's default). The HTTP job API and the
  RunPod worker validate :class:`TTSRequest` (the schema they share) into it; the WebSocket stream and
  the OpenAI endpoint map their own protocol fields onto it.
- :class:`~f5vi.jobs.models.JobRequest`: the same with every default filled in from
  :class:`~f5vi.config.Settings` and the voice resolved to its id — what a job persists, so a job
  queued before a restart runs with the parameters it was accepted with.
- :class:`~f5vi.engine.types.SynthesisRequest`: what the engine takes (the voice's audio and
  transcript as they are when it runs).

:meth:`RequestBuilder.prepare` goes from the first to the last and runs every submit-time check
once (:func:`~f5vi.engine.validation.validate_request`: empty text, length, ranges; the output
format), so the entry points refuse the same things with the same words. The voices the text's
``[voice_id]`` tags name (:mod:`f5vi.engine.text.voice_tags`) are resolved there too, so a tag naming an
unknown voice is a 404 before anything is queued; they are resolved again when the request runs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Annotated, Any, Protocol

import anyio.to_thread
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from f5vi.config import Settings
from f5vi.engine.errors import InvalidParameterError
from f5vi.engine.text.voice_tags import split_voice_tags, tagged_voices
from f5vi.engine.types import ReferenceVoice, SynthesisRequest, VerifyOptions
from f5vi.engine.validation import check_text, require_text, validate_request
from f5vi.formats import OutputFormat, available_formats
from f5vi.jobs.models import JOB_ID_PATTERN, JobRequest
from f5vi.voices.errors import InvalidVoiceNameError, VoiceNotFoundError
from f5vi.voices.names import MAX_REF_NAME_CHARS, REF_NAME_PATTERN

NOT_BLANK_PATTERN = r"\S"
"""Documents :func:`require_text`'s "not only spaces" (``str.strip()`` and ``\\S`` agree on spaces)."""

SpeechText = Annotated[
    str, Field(min_length=1, json_schema_extra={"pattern": NOT_BLANK_PATTERN}), AfterValidator(require_text)
]
"""Text to speak in a request schema: whitespace-only text is a validation error of the field, by
the same check (:func:`~f5vi.engine.validation.require_text`) the engine runs."""

VOICE_TAGS_HELP = (
    "`[voice_id]` in the text switches to that voice for the text after it (the text before the first "
    "tag is said by the request's own voice); each voice's part is chunked and synthesised with that "
    "voice and all parts are cross-faded in order. `[[` is a literal `[`. An unknown voice is a 404 "
    "(`voice_not_found`) before anything is queued."
)
"""How the request schemas describe voice tags (``text`` fields of /tts, /normalize, the OpenAI body)."""

VERIFY_HELP = (
    "Check what was said: transcribe every chunk (PhoWhisper) and sample it again with a new seed "
    "(derived from `seed`, the chunk and the attempt) while its character error rate is above "
    "`F5VI_VERIFY_MAX_CER`, up to `F5VI_VERIFY_MAX_ATTEMPTS` samplings; the best attempt is kept and the "
    "result lists `verification` per chunk. Default `F5VI_VERIFY` (off). Costs an ASR pass per attempt."
)
"""How every request schema describes ``verify``."""


class VoiceLike(Protocol):
    id: str
    audio_path: Path
    transcript: str | None


class VoiceResolver(Protocol):
    """What the job system needs of :class:`f5vi.voices.library.VoiceLibrary`."""

    def resolve(self, ref_name: str) -> Any: ...

    def ensure_transcript(self, voice: Any) -> Any: ...


@dataclass(frozen=True)
class TTSInput:
    """What a client asks for; ``None`` means the server's default (``Settings``)."""

    text: str
    ref_name: str
    speed: float | None = None
    nfe_step: int | None = None
    seed: int | None = None
    format: str = "wav"
    verify: bool | None = None


def _json_integer(value: object) -> object:
    """JSON Schema's ``integer`` includes ``8.0``; strict validation then refuses ``"8"`` and ``true``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The constraints come before the validator: the other way round pydantic writes "ge"/"le" into the
# JSON schema instead of "minimum"/"maximum" (the checks themselves work either way).
NfeStep = Annotated[int, Field(ge=1, le=128), BeforeValidator(_json_integer)]
"""ODE steps, as strictly typed requests take integers: 8 or 8.0, not "8", not true."""
Seed = Annotated[int, Field(ge=0, lt=2**32), BeforeValidator(_json_integer)]


class SpeechFields(BaseModel):
    """Text, voice and speed: what synthesis and its normalisation preview (``POST /normalize``) take.

    Unknown fields are ignored (older clients send extras); the known ones are typed strictly: ``"8"``
    is not a number and ``true`` is not 1."""

    model_config = ConfigDict(extra="ignore", strict=True)

    text: SpeechText = Field(
        description="Text to speak (Vietnamese), not only spaces. Limit: `F5VI_MAX_TEXT_CHARS`. "
        + VOICE_TAGS_HELP
    )
    ref_name: str = Field(
        min_length=1,
        max_length=MAX_REF_NAME_CHARS,
        description="Reference voice: `3_Nu`, `3_Nu.wav`, `sample/3_Nu.wav` or `voice:3_Nu`. A name that "
        "does not match the pattern is answered 400 `invalid_voice_name`.",
        json_schema_extra={"pattern": REF_NAME_PATTERN},  # checked by the voice library
    )
    speed: float | None = Field(None, ge=0.3, le=2.0, description="Speaking rate; default 0.9.")


class TTSRequest(SpeechFields):
    """Submit text for synthesis. Unknown fields are ignored (older clients send extras)."""

    model_config = ConfigDict(
        extra="ignore",
        strict=True,
        json_schema_extra={
            "examples": [{"text": "Xin chào, tôi là trợ lý ảo.", "ref_name": "vi_north_male", "speed": 0.9}]
        },
    )

    job_id: str | None = Field(
        None,
        pattern=JOB_ID_PATTERN,
        description="Optional client id (letters, digits, `_`, `-`; <= 128). Resubmitting the same id "
        "with the same request returns the existing job; with a different request: 409.",
    )
    nfe_step: NfeStep | None = Field(None, description="ODE steps; default 32.")
    seed: Seed | None = Field(None, description="Random seed; chosen and reported if omitted.")
    format: OutputFormat = Field("wav", description="Output format; wav is 16-bit PCM mono 24 kHz.")
    verify: bool | None = Field(None, description=VERIFY_HELP)

    def to_input(self) -> TTSInput:
        return TTSInput(
            text=self.text,
            ref_name=self.ref_name,
            speed=self.speed,
            nfe_step=self.nfe_step,
            seed=self.seed,
            format=self.format,
            verify=self.verify,
        )


@dataclass(frozen=True)
class PreparedRequest:
    """A checked request: complete parameters, the voice it names, and the engine's request."""

    request: JobRequest
    voice: Any
    synthesis: SynthesisRequest
    tagged: tuple[tuple[str, Any], ...] = ()
    """The voices the text's tags name, as ``(tag, voice)`` in order of first use."""


def complete_request(params: TTSInput, voice_id: str, settings: Settings) -> JobRequest:
    """Fill every parameter the client left out from the server's settings."""
    s = settings
    return JobRequest(
        text=params.text,
        voice_id=voice_id,
        ref_name=params.ref_name,
        speed=float(params.speed if params.speed is not None else s.speed),
        nfe_step=int(params.nfe_step if params.nfe_step is not None else s.nfe_step),
        seed=params.seed,
        format=(params.format or "wav").lower(),
        cfg_strength=s.cfg_strength,
        sway_sampling_coef=s.sway_sampling_coef,
        ode_method=s.ode_method,
        cross_fade_seconds=s.cross_fade_seconds,
        use_epss=s.use_epss,
        verify=bool(params.verify if params.verify is not None else s.verify),
        verify_max_cer=s.verify_max_cer,
        verify_max_attempts=s.verify_max_attempts,
    )


_ENGINE_PARAMETERS = tuple(
    f.name
    for f in fields(SynthesisRequest)
    if f.name in {g.name for g in fields(JobRequest)} and f.name != "verify"
)
"""What a job request hands to the engine as it is (text, speed, nfe_step, cfg, sway, ode, seed, ...)."""


def synthesis_request(
    request: JobRequest, voice: VoiceLike, tagged: tuple[tuple[str, VoiceLike], ...] = ()
) -> SynthesisRequest:
    """The engine's request for ``request`` with ``voice`` (and the ``tagged`` voices) as they are now.

    A voice's transcript may be new since the request was accepted, hence "now".
    """
    return SynthesisRequest(
        reference=_reference(voice),
        voices=tuple((tag, _reference(v)) for tag, v in tagged),
        verify=VerifyOptions(request.verify_max_cer, request.verify_max_attempts) if request.verify else None,
        **{name: getattr(request, name) for name in _ENGINE_PARAMETERS},
    )


def _reference(voice: VoiceLike) -> ReferenceVoice:
    return ReferenceVoice(audio_path=voice.audio_path, transcript=voice.transcript, voice_id=voice.id)


def resolve_tagged_voices(text: str, voices: VoiceResolver) -> tuple[tuple[str, Any], ...]:
    """The voice of every ``[voice_id]`` tag in ``text``, as ``(tag, voice)`` in order of first use.

    Blocking (reads the voices directory). A tag naming no voice raises ``voice_not_found`` (404),
    one that is no valid id ``invalid_voice_name`` (400); both say how to write a literal ``[``, for
    text that never meant to switch voices.
    """
    resolved: list[tuple[str, Any]] = []
    for tag in tagged_voices(split_voice_tags(text)):
        try:
            resolved.append((tag, voices.resolve(tag)))
        except (VoiceNotFoundError, InvalidVoiceNameError) as exc:
            raise type(exc)(
                f"the text's voice tag [{tag}]: {exc.message}. A '[' followed by a voice id and ']' "
                f"switches the voice; to write it as text, double the '[': [[{tag}]"
            ) from exc
    return tuple(resolved)


def resolve_request(request: JobRequest, voices: VoiceResolver) -> SynthesisRequest:
    """The engine's request for a stored job, with its voices as they are now (blocking)."""
    return synthesis_request(
        request, voices.resolve(request.voice_id), resolve_tagged_voices(request.text, voices)
    )


def needs_transcripts(request: SynthesisRequest) -> bool:
    """Does a voice of ``request`` (its own or a tagged one) still lack a transcript?"""
    return any(ref.transcript is None for ref in _references(request))


def with_transcripts(request: SynthesisRequest, voices: VoiceResolver) -> SynthesisRequest:
    """``request`` with every voice that lacks a transcript transcribed (blocking: runs ASR).

    Call it in the engine's turn, as a job or stream does for its own voice.
    """

    def transcribed(ref: ReferenceVoice) -> ReferenceVoice:
        if ref.transcript is not None or ref.voice_id is None:
            return ref
        voice = voices.ensure_transcript(voices.resolve(ref.voice_id))
        return replace(ref, transcript=voice.transcript)

    return replace(
        request,
        reference=transcribed(request.reference),
        voices=tuple((tag, transcribed(ref)) for tag, ref in request.voices),
    )


def _references(request: SynthesisRequest) -> list[ReferenceVoice]:
    return [request.reference, *(ref for _, ref in request.voices)]


def check_format(name: str) -> None:
    available = available_formats()
    if name not in available:
        raise InvalidParameterError(f"unsupported format {name!r}; available: {', '.join(available)}")


@dataclass(frozen=True)
class RequestBuilder:
    settings: Settings
    voices: VoiceResolver

    async def prepare(self, params: TTSInput) -> PreparedRequest:
        """Resolve the voices, fill the defaults, check everything; raises the typed errors."""
        voice = await anyio.to_thread.run_sync(self.voices.resolve, params.ref_name)
        return await anyio.to_thread.run_sync(self.prepare_for, params, voice)

    def prepare_for(self, params: TTSInput, voice: VoiceLike) -> PreparedRequest:
        """:meth:`prepare` once the request's own voice is known (blocking: reads the tags' voices).

        The command line calls it directly: its voice may be an audio file outside the library.
        """
        check_text(params.text, self.settings.max_text_chars)  # before reading any tag's voice
        tagged = resolve_tagged_voices(params.text, self.voices)
        request = complete_request(params, voice.id, self.settings)
        synthesis = synthesis_request(request, voice, tagged)
        validate_request(synthesis, self.settings.max_text_chars)
        check_format(request.format)
        return PreparedRequest(request=request, voice=voice, synthesis=synthesis, tagged=tagged)
