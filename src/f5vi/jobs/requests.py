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

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Literal, Protocol

import anyio.to_thread
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from f5vi.config import Settings
from f5vi.engine.errors import InvalidParameterError
from f5vi.engine.text.lexicon import (
    LEXICON_SUFFIX,
    MAX_REQUEST_ENTRIES,
    MAX_SAY_CHARS,
    MAX_TERM_CHARS,
    Lexicon,
    LexiconFileError,
    load_server_lexicon,
    read_lexicon_file,
    request_entries,
)
from f5vi.engine.text.script import parse_script
from f5vi.engine.types import ReferenceVoice, SynthesisRequest, VerifyOptions
from f5vi.engine.validation import SPEED_RANGE, check_text, require_text, validate_request
from f5vi.formats import OutputFormat, available_formats
from f5vi.jobs.models import JOB_ID_PATTERN, JobRequest
from f5vi.voices.directory import Voice
from f5vi.voices.errors import InvalidVoiceNameError, VoiceNotFoundError, VoiceUnreadableError
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

SSML_HELP = (
    ' A text starting with `<speak>` (or `text_type: "ssml"`) is SSML of the subset in docs/text.md: '
    "`<break>`, `<say-as>`, `<sub>`, `<prosody rate>`, `<voice name>`, `<p>`, `<s>`; anything else is 422 "
    "`invalid_ssml` naming the tag and its line and column."
)
TextTypeField = Literal["auto", "text", "ssml"]
LexiconTuple = tuple[tuple[str, str, bool], ...]

VERIFY_HELP = (
    "Check what was said: transcribe every chunk (PhoWhisper) and sample it again with a new seed "
    "(derived from `seed`, the chunk and the attempt) while its character error rate is above "
    "`F5VI_VERIFY_MAX_CER`, up to `F5VI_VERIFY_MAX_ATTEMPTS` samplings; the best attempt is kept and the "
    "result lists `verification` per chunk. Default `F5VI_VERIFY` (off). Costs an ASR pass per attempt."
)
"""How every request schema describes ``verify``."""


class LexiconItem(BaseModel):
    """One respelling of a request's ``lexicon``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    term: str = Field(
        min_length=1,
        max_length=MAX_TERM_CHARS,
        description="Whole word(s) to respell: letters, digits, `. & - ' +` inside, single spaces.",
    )
    say: str = Field(
        min_length=1, max_length=MAX_SAY_CHARS, description="What to say instead (then normalised)."
    )
    case_sensitive: bool = Field(False, description="Match only this exact case (default: any case).")


LEXICON_HELP = (
    "Respellings applied before normalisation, whole words only; they win over the voice's "
    "(`<voice>.lexicon`) and the server's (`F5VI_LEXICON_PATHS`, `GET /lexicon`). "
    f"At most {MAX_REQUEST_ENTRIES} entries; a malformed one is 422 `invalid_parameter`."
)


class VoiceResolver(Protocol):
    """What the job system needs of :class:`f5vi.voices.library.VoiceLibrary`."""

    def resolve(self, ref_name: str) -> Voice: ...

    def ensure_transcript(self, voice: Voice) -> Voice: ...


@dataclass(frozen=True)
class TTSInput:
    """What a client asks for; ``None`` means the server's default (``Settings``)."""

    text: str
    ref_name: str
    speed: float | None = None
    nfe_step: int | None = None
    seed: int | None = None
    format: str = "wav"
    text_type: str = "auto"
    lexicon: LexiconTuple = ()
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
        + SSML_HELP
    )
    ref_name: str = Field(
        min_length=1,
        max_length=MAX_REF_NAME_CHARS,
        description="Reference voice: `3_Nu`, `3_Nu.wav`, `sample/3_Nu.wav` or `voice:3_Nu`. A name that "
        "does not match the pattern is answered 400 `invalid_voice_name`.",
        json_schema_extra={"pattern": REF_NAME_PATTERN},  # checked by the voice library
    )
    speed: float | None = Field(
        None, ge=SPEED_RANGE[0], le=SPEED_RANGE[1], description="Speaking rate; default 0.9."
    )
    text_type: TextTypeField = Field(
        "auto", description="`ssml`, `text`, or `auto`: SSML when the text starts with `<speak>`."
    )
    lexicon: list[LexiconItem] | None = Field(None, max_length=MAX_REQUEST_ENTRIES, description=LEXICON_HELP)

    def lexicon_tuple(self) -> LexiconTuple:
        return lexicon_tuple(self.lexicon)


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
            text_type=self.text_type,
            lexicon=self.lexicon_tuple(),
            verify=self.verify,
        )


def lexicon_tuple(items: list[LexiconItem] | None) -> LexiconTuple:
    """A schema's lexicon as the plain tuples a job persists."""
    return tuple((i.term, i.say, i.case_sensitive) for i in items or ())


@dataclass(frozen=True)
class PreparedRequest:
    """A checked request: complete parameters, the voice it names, and the engine's request."""

    request: JobRequest
    voice: Voice
    synthesis: SynthesisRequest
    tagged: tuple[tuple[str, Voice], ...] = ()
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
        text_type=params.text_type,
        lexicon=tuple(params.lexicon),
        use_epss=s.use_epss,
        verify=bool(params.verify if params.verify is not None else s.verify),
        verify_max_cer=s.verify_max_cer,
        verify_max_attempts=s.verify_max_attempts,
    )


_ENGINE_PARAMETERS = tuple(
    f.name
    for f in fields(SynthesisRequest)
    if f.name in {g.name for g in fields(JobRequest)} and f.name not in ("lexicon", "verify")
)
"""What a job request hands to the engine as it is (text, speed, nfe_step, cfg, sway, ode, seed, ...)."""


def synthesis_request(
    request: JobRequest,
    voice: Voice,
    tagged: tuple[tuple[str, Voice], ...] = (),
    server_lexicon: Lexicon | None = None,
) -> SynthesisRequest:
    """The engine's request for ``request`` with ``voice`` (and the ``tagged`` voices) as they are now.

    A voice's transcript (and lexicon) may be new since the request was accepted, hence "now".
    """
    return SynthesisRequest(
        reference=_reference(voice),
        voices=tuple((tag, _reference(v)) for tag, v in tagged),
        lexicon=Lexicon(request_entries(request.lexicon)),
        server_lexicon=server_lexicon if server_lexicon is not None else Lexicon(),
        verify=VerifyOptions(request.verify_max_cer, request.verify_max_attempts) if request.verify else None,
        **{name: getattr(request, name) for name in _ENGINE_PARAMETERS},
    )


def voice_lexicon(audio_path: Path) -> Lexicon:
    """The lexicon beside a voice's audio (``<id>.lexicon``), empty when there is none."""
    path = audio_path.with_suffix(LEXICON_SUFFIX)
    if not path.is_file():
        return Lexicon()
    try:
        return Lexicon(read_lexicon_file(path, "voice"))
    except LexiconFileError as exc:
        raise VoiceUnreadableError(
            f"the voice's lexicon is malformed: {exc}; fix or remove the file"
        ) from exc


def _reference(voice: Voice) -> ReferenceVoice:
    return ReferenceVoice(
        audio_path=voice.audio_path,
        transcript=voice.transcript,
        voice_id=voice.id,
        lexicon=voice_lexicon(voice.audio_path),
    )


def resolve_tagged_voices(
    text: str, voices: VoiceResolver, text_type: str = "auto"
) -> tuple[tuple[str, Voice], ...]:
    """The voice of every ``[voice_id]`` tag in ``text``, as ``(tag, voice)`` in order of first use.

    Blocking (reads the voices directory). A tag naming no voice raises ``voice_not_found`` (404),
    one that is no valid id ``invalid_voice_name`` (400); both say how to write a literal ``[``, for
    text that never meant to switch voices.
    """
    resolved: list[tuple[str, Voice]] = []
    for tag in parse_script(text, _text_type(text_type)).voices():
        try:
            resolved.append((tag, voices.resolve(tag)))
        except (VoiceNotFoundError, InvalidVoiceNameError) as exc:
            raise type(exc)(
                f"the text's voice tag [{tag}]: {exc.message}. A '[' followed by a voice id and ']' "
                f"switches the voice; to write it as text, double the '[': [[{tag}]"
            ) from exc
    return tuple(resolved)


def _text_type(value: str) -> Literal["auto", "text", "ssml"]:
    if value not in ("auto", "text", "ssml"):
        raise InvalidParameterError(f"text_type must be auto, text or ssml, not {value!r}")
    return value  # type: ignore[return-value]


def resolve_request(
    request: JobRequest, voices: VoiceResolver, server_lexicon: Lexicon | None = None
) -> SynthesisRequest:
    """The engine's request for a stored job, with its voices as they are now (blocking)."""
    tagged = resolve_tagged_voices(request.text, voices, request.text_type)
    return synthesis_request(request, voices.resolve(request.voice_id), tagged, server_lexicon)


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


def load_lexicons(settings: Settings) -> Lexicon:
    """The server's lexicon (``F5VI_LEXICON_PATHS``), after checking every voice's ``<id>.lexicon``.

    Called once at start: a malformed file raises :class:`LexiconFileError` (file, line, reason) and
    the server does not start.
    """
    server = load_server_lexicon(settings.lexicon_paths)
    for directory in (*settings.read_only_voice_dirs, settings.uploaded_voices_path):
        if directory.is_dir():
            for path in sorted(directory.glob("*" + LEXICON_SUFFIX)):
                read_lexicon_file(path, "voice")
    return server


def check_format(name: str) -> None:
    available = available_formats()
    if name not in available:
        raise InvalidParameterError(f"unsupported format {name!r}; available: {', '.join(available)}")


@dataclass(frozen=True)
class RequestBuilder:
    settings: Settings
    voices: VoiceResolver
    server_lexicon: Lexicon = field(default_factory=Lexicon)
    """Loaded once at start (``F5VI_LEXICON_PATHS``); a malformed file stops the start."""

    async def prepare(self, params: TTSInput) -> PreparedRequest:
        """Resolve the voices, fill the defaults, check everything; raises the typed errors."""
        voice = await anyio.to_thread.run_sync(self.voices.resolve, params.ref_name)
        return await anyio.to_thread.run_sync(self.prepare_for, params, voice)

    def prepare_for(self, params: TTSInput, voice: Voice) -> PreparedRequest:
        """:meth:`prepare` once the request's own voice is known (blocking: reads the tags' voices).

        The command line calls it directly: its voice may be an audio file outside the library.
        """
        # before reading any voice: length, SSML, something to say
        check_text(params.text, self.settings.max_text_chars, _text_type(params.text_type))
        request_entries(params.lexicon)  # a malformed entry is a 422 before anything else
        tagged = resolve_tagged_voices(params.text, self.voices, params.text_type)
        request = complete_request(params, voice.id, self.settings)
        synthesis = synthesis_request(request, voice, tagged, self.server_lexicon)
        validate_request(synthesis, self.settings.max_text_chars)
        check_format(request.format)
        return PreparedRequest(request=request, voice=voice, synthesis=synthesis, tagged=tagged)
