"""The SSML subset: markup -> :class:`~f5vi.engine.text.script.SpeechScript` (segments with spans).

Supported (everything else is an :class:`SsmlError`, 422, naming the tag and where it is)::

    <speak>                       the root (attributes xml:lang, version, xmlns ignored)
    <break time="500ms"|"1.5s" strength="none|x-weak|weak|medium|strong|x-strong"/>
                                  real silence of that length in the audio (not text); at most 10 s
    <say-as interpret-as="characters|digits|cardinal|date|telephone" [format="dmy|mdy|ymd"]>
    <sub alias="reading">written</sub>
    <prosody rate="x-slow|slow|medium|fast|x-fast|80%|1.2">   the speed of that part (x request speed)
    <voice name="voice_id">       the same as a [voice_id] tag
    <p>, <s>                      paragraph / sentence: ends a sentence

Parsing is safe by construction: expat with every DTD refused (a ``<!DOCTYPE`` stops the parse before any
entity is declared, so there is no entity expansion — billion laughs — and no external entity), parameter
entity parsing off, at most :data:`MAX_SSML_CHARS` characters, :data:`MAX_DEPTH` levels of nesting and
:data:`MAX_ELEMENTS` elements. These are the protections of defusedxml's expat parser; expat is used
directly because the errors must name the byte position of the offending tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from xml.parsers import expat

from f5vi.engine.errors import InvalidTextError
from f5vi.engine.text.rules import DIGIT_WORDS, LETTER_NAMES, spell_digits
from f5vi.engine.text.segments import SpeechScript, SpeechSegment
from f5vi.engine.text.spans import SourcePiece
from f5vi.engine.text.voice_tags import VOICE_ID_PATTERN

MAX_SSML_CHARS = 200_000
MAX_DEPTH = 32
MAX_ELEMENTS = 10_000
MAX_BREAK_MS = 10_000
MAX_PARTS = 200
"""Parts (split by breaks, rate and voice changes): each is normalised and chunked on its own."""
MIN_RATE, MAX_RATE = 0.5, 2.0

BREAK_STRENGTHS_MS = {"none": 0, "x-weak": 100, "weak": 250, "medium": 500, "strong": 750, "x-strong": 1000}
RATE_WORDS = {"x-slow": 0.6, "slow": 0.8, "medium": 1.0, "default": 1.0, "fast": 1.2, "x-fast": 1.4}
SAY_AS = ("characters", "digits", "cardinal", "date", "telephone")
_ALLOWED_ATTRIBUTES = {
    "speak": {"version", "xmlns", "xml:lang", "xmlns:xsi", "xsi:schemaLocation"},
    "break": {"time", "strength"},
    "say-as": {"interpret-as", "format"},
    "sub": {"alias"},
    "prosody": {"rate"},
    "voice": {"name"},
    "p": set(),
    "s": set(),
}
_VOICE_ID_RE = re.compile(VOICE_ID_PATTERN + r"\Z")
_SUPPORTED = ", ".join(f"<{t}>" for t in _ALLOWED_ATTRIBUTES)
_TIME_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")


class SsmlError(InvalidTextError, code="invalid_ssml", http_status=422):
    """The SSML document is malformed or uses what the subset does not have; the message says where."""


def looks_like_ssml(text: str) -> bool:
    """A text that starts with ``<speak`` (after spaces), an XML declaration or a DOCTYPE is SSML
    (and a DOCTYPE is then refused: no document type may declare entities)."""
    head = text.lstrip()
    return head.startswith(("<speak>", "<speak ", "<speak\n", "<?xml", "<!DOCTYPE"))


@dataclass
class _Scope:
    tag: str
    voice: str | None
    rate: float
    start: int
    """Char offset of the start tag."""
    text: list[str] = field(default_factory=list)
    """say-as / sub: the element's own text (no child elements allowed)."""
    attrs: dict[str, str] = field(default_factory=dict)


class _Parser:
    def __init__(self, document: str) -> None:
        self.doc = document
        data = document.encode("utf-8")
        self.data = data
        self._ascii = len(data) == len(document)
        self._byte_to_char: list[int] = []
        if not self._ascii:
            for index, char in enumerate(document):
                self._byte_to_char.extend([index] * len(char.encode("utf-8")))
            self._byte_to_char.append(len(document))
        self.scopes: list[_Scope] = []
        self.elements = 0
        self.segments: list[SpeechSegment] = []
        self.pieces: list[SourcePiece] = []
        self.pause_ms = 0
        """Silence asked for since the last segment closed (before the next one's first piece)."""
        self.segment_pause_ms = 0
        self.current: tuple[str | None, float] = (None, 1.0)
        self.seen_root = False
        self.parser = expat.ParserCreate(encoding="utf-8")
        self.parser.buffer_text = False
        self.parser.ordered_attributes = False
        self.parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.parser.StartDoctypeDeclHandler = self._forbid_dtd
        self.parser.EntityDeclHandler = self._forbid_entity
        self.parser.UnparsedEntityDeclHandler = self._forbid_entity
        self.parser.ExternalEntityRefHandler = self._forbid_external
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._chars

    # -- positions --------------------------------------------------------------------------------
    def _char(self, byte_index: int) -> int:
        if byte_index < 0:
            return len(self.doc)
        return byte_index if self._ascii else self._byte_to_char[min(byte_index, len(self._byte_to_char) - 1)]

    def _here(self) -> int:
        return self._char(self.parser.CurrentByteIndex)

    def where(self, offset: int) -> str:
        line = self.doc.count("\n", 0, offset) + 1
        column = offset - (self.doc.rfind("\n", 0, offset) + 1) + 1
        return f"line {line}, column {column} (character {offset})"

    def fail(self, message: str, offset: int | None = None) -> SsmlError:
        offset = self._here() if offset is None else offset
        return SsmlError(f"SSML: {message} at {self.where(offset)}")

    # -- safety -------------------------------------------------------------------------------------
    def _forbid_dtd(self, *args: Any) -> None:
        raise self.fail("a DOCTYPE (DTD) is not allowed: entity declarations are refused")

    def _forbid_entity(self, *args: Any) -> None:
        raise self.fail("entity declarations and external entities are not allowed")

    def _forbid_external(self, *args: Any) -> int:
        raise self.fail("external entities are not allowed")

    # -- segments ---------------------------------------------------------------------------------
    def _state(self) -> tuple[str | None, float]:
        scope = self.scopes[-1] if self.scopes else None
        return (scope.voice, scope.rate) if scope else (None, 1.0)

    def _flush(self) -> None:
        """Close the segment being collected (if it says anything)."""
        if any(p.text.strip() for p in self.pieces):
            if len(self.segments) >= MAX_PARTS:
                raise self.fail(
                    f"more than {MAX_PARTS} parts (each <break>, rate or voice change starts one); "
                    "join short parts or send several requests"
                )
            voice, rate = self.current
            self.segments.append(SpeechSegment(tuple(self.pieces), voice, rate, self.segment_pause_ms))
        elif self.pieces:  # only spaces: its pause carries over to the next segment
            self.pause_ms = min(self.pause_ms + self.segment_pause_ms, MAX_BREAK_MS)
        self.segment_pause_ms = 0
        self.pieces = []

    def _add(self, piece: SourcePiece) -> None:
        state = self._state()
        if state != self.current:
            self._flush()
            self.current = state
        if not self.pieces:
            self.segment_pause_ms, self.pause_ms = self.pause_ms, 0
        self.pieces.append(piece)

    # -- handlers ---------------------------------------------------------------------------------
    def _start(self, tag: str, attrs: dict[str, str]) -> None:
        offset = self._here()
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise self.fail(f"more than {MAX_ELEMENTS} elements", offset)
        if len(self.scopes) >= MAX_DEPTH:
            raise self.fail(f"elements nested deeper than {MAX_DEPTH} levels", offset)
        if tag not in _ALLOWED_ATTRIBUTES:
            raise self.fail(
                f"<{tag}> is not supported (supported: {_SUPPORTED})",
                offset,
            )
        if not self.scopes and tag != "speak":
            raise self.fail(f"the root element must be <speak>, not <{tag}>", offset)
        if self.scopes and tag == "speak":
            raise self.fail("<speak> inside <speak>", offset)
        unknown = set(attrs) - _ALLOWED_ATTRIBUTES[tag]
        if unknown:
            raise self.fail(f"<{tag}> has no attribute {sorted(unknown)[0]!r}", offset)
        parent = self.scopes[-1] if self.scopes else None
        if parent is not None and parent.tag in ("say-as", "sub"):
            raise self.fail(f"<{parent.tag}> may hold only text, not <{tag}>", offset)
        voice, rate = self._state()
        if tag == "voice":
            voice = self._voice(attrs, offset)
        elif tag == "prosody":
            rate = rate * self._rate(attrs, offset)
        elif tag == "break":
            self._flush()
            self.pause_ms = min(self.pause_ms + self._break_ms(attrs, offset), MAX_BREAK_MS)
        elif tag == "say-as":
            kind = attrs.get("interpret-as", "")
            if kind not in SAY_AS:
                raise self.fail(
                    f"<say-as interpret-as={kind!r}> is not supported (use {', '.join(SAY_AS)})", offset
                )
        elif tag == "sub" and not attrs.get("alias", "").strip():
            raise self.fail("<sub> needs a non-empty alias", offset)
        self.scopes.append(_Scope(tag, voice, rate, offset, attrs=dict(attrs)))

    def _end(self, tag: str) -> None:
        end = self._tag_end(self._here())
        scope = self.scopes.pop()
        if tag in ("say-as", "sub"):
            written = "".join(scope.text)
            reading = (
                " ".join(scope.attrs["alias"].split())
                if tag == "sub"
                else self._say_as(
                    scope.attrs["interpret-as"], written, scope.attrs.get("format"), scope.start
                )
            )
            self.scopes.append(scope)  # the reading is said in the element's own voice and rate
            self._add(SourcePiece(f" {reading} ", scope.start, end, verbatim=False))
            self.scopes.pop()
        elif tag in ("p", "s"):
            self.scopes.append(scope)
            self._add(SourcePiece("\n", end, end, verbatim=False))  # a line ends a sentence
            self.scopes.pop()
        if not self.scopes:
            self.seen_root = True

    def _chars(self, data: str) -> None:
        if not self.scopes:
            return
        scope = self.scopes[-1]
        if scope.tag in ("say-as", "sub"):
            scope.text.append(data)
            return
        if scope.tag == "break":
            if data.strip():
                raise self.fail("<break> must be empty")
            return
        start = self._here()
        entity = self.doc.startswith("&", start)  # a bare "&" cannot be text in XML
        if not entity and self.doc.startswith(data, start):
            self._add(SourcePiece(data, start, start + len(data)))
        else:  # an entity or character reference (&amp; &#233;), or a normalised line break
            close = self.doc.find(";", start) if entity else -1
            stop = close + 1 if close >= 0 else start + len(data)
            self._add(SourcePiece(data, start, stop, verbatim=False))

    # -- attribute values ---------------------------------------------------------------------------
    def _tag_end(self, offset: int) -> int:
        """Where the element that ends at ``offset`` ends (after its ``>``; for ``<x/>`` expat
        reports the start tag's position)."""
        close = self.doc.find(">", offset)
        return close + 1 if close >= 0 else len(self.doc)

    def _voice(self, attrs: dict[str, str], offset: int) -> str:
        name = attrs.get("name", "").strip()
        if not _VOICE_ID_RE.match(name):
            raise self.fail(f"<voice name={name!r}> is not a voice id (letters, digits, . _ -)", offset)
        return name

    def _rate(self, attrs: dict[str, str], offset: int) -> float:
        value = attrs.get("rate", "").strip().lower()
        rate: float | None = RATE_WORDS.get(value)
        try:
            if rate is None and value.endswith("%"):
                rate = float(value[:-1]) / 100
            elif rate is None and value:
                rate = float(value)
        except ValueError:
            rate = None
        if rate is None or not MIN_RATE <= rate <= MAX_RATE:
            raise self.fail(
                f"<prosody rate={value!r}>: use x-slow..x-fast, a percentage or a factor "
                f"from {MIN_RATE} to {MAX_RATE}",
                offset,
            )
        return rate

    def _break_ms(self, attrs: dict[str, str], offset: int) -> int:
        if "time" in attrs:
            match = _TIME_RE.match(attrs["time"])
            if not match:
                raise self.fail(f"<break time={attrs['time']!r}>: write e.g. '500ms' or '1.5s'", offset)
            value = float(match.group(1)) * (1000 if match.group(2) == "s" else 1)
            if value > MAX_BREAK_MS:
                raise self.fail(
                    f"<break time={attrs['time']!r}> is longer than {MAX_BREAK_MS // 1000} s", offset
                )
            return round(value)
        strength = attrs.get("strength", "medium")
        if strength not in BREAK_STRENGTHS_MS:
            raise self.fail(f"<break strength={strength!r}>: use {', '.join(BREAK_STRENGTHS_MS)}", offset)
        return BREAK_STRENGTHS_MS[strength]

    def _say_as(self, kind: str, written: str, fmt: str | None, offset: int) -> str:
        text = " ".join(written.split())
        if not text:
            raise self.fail(f"<say-as interpret-as={kind!r}> is empty", offset)
        reading = _say_as_reading(kind, text, fmt)
        if reading is None:
            raise self.fail(f"<say-as interpret-as={kind!r}> cannot read {text!r}", offset)
        return reading

    # -- run --------------------------------------------------------------------------------------
    def parse(self) -> SpeechScript:
        try:
            self.parser.Parse(self.data, True)
        except expat.ExpatError as exc:
            offset = self._char(self.parser.ErrorByteIndex)
            raise SsmlError(
                f"SSML is not well-formed XML: {expat.ErrorString(exc.code)} at {self.where(offset)}"
            ) from None
        except RecursionError:
            raise SsmlError(f"SSML nested too deeply (at most {MAX_DEPTH} levels)") from None
        self._flush()
        if not self.segments:
            raise SsmlError("SSML: the document has nothing to say")
        return SpeechScript(tuple(self.segments), trailing_pause_ms=self.pause_ms, ssml=True)


def parse_ssml(document: str) -> SpeechScript:
    """Parse an SSML document of the subset; raises :class:`SsmlError` naming tag and position."""
    if len(document) > MAX_SSML_CHARS:
        raise SsmlError(f"SSML document is longer than {MAX_SSML_CHARS} characters")
    return _Parser(document).parse()


# --- say-as ----------------------------------------------------------------------------------------


def _spell_characters(text: str) -> str:
    words = []
    for char in text:
        low = char.lower()
        if low in LETTER_NAMES:
            words.append(LETTER_NAMES[low])
        elif char.isdigit():
            words.append(DIGIT_WORDS[int(char)])
        elif char.isalpha():
            words.append(low)
    return " ".join(words)


def _date(text: str, fmt: str | None) -> str | None:
    parts = [int(p) for p in re.findall(r"\d+", text)]
    order = (fmt or "").lower()
    if len(parts) == 3:
        if order == "mdy":
            month, day, year = parts
        elif order == "ymd" or (not order and parts[0] > 31):
            year, month, day = parts
        else:
            day, month, year = parts
        if not (1 <= day <= 31 and 1 <= month <= 12):
            return None
        return f"ngày {day} tháng {month} năm {year}"
    if len(parts) == 2:
        first, second = parts
        if order in ("my", "") and 1 <= first <= 12 and second > 31:
            return f"tháng {first} năm {second}"
        if 1 <= first <= 31 and 1 <= second <= 12:
            return f"ngày {first} tháng {second}"
    return None


def _say_as_reading(kind: str, text: str, fmt: str | None) -> str | None:
    if kind == "characters":
        return _spell_characters(text) or None
    if kind == "digits":
        groups = re.findall(r"\d+", text)
        return ", ".join(spell_digits(g) for g in groups) or None
    if kind == "cardinal":
        plain = re.sub(r"(?<=\d)[.,\s](?=\d{3}\b)", "", text.strip())
        if not re.fullmatch(r"-?\d+", plain):
            return None
        return ("âm " + plain[1:]) if plain.startswith("-") else plain
    if kind == "telephone":
        groups = re.findall(r"\+?\d+", text)
        read = [("cộng " + spell_digits(g[1:])) if g.startswith("+") else spell_digits(g) for g in groups]
        return ", ".join(read) or None
    return _date(text, fmt)
