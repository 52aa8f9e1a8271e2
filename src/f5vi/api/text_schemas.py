"""Schemas of the text front end's reports: lexicon entries and where they fired (``GET /lexicon``,
``POST /normalize``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from f5vi.engine.text.lexicon import Lexicon, LexiconEntry, LexiconHit


class LexiconEntryInfo(BaseModel):
    term: str
    say: str = Field(description="What is said instead (before normalisation).")
    case_sensitive: bool
    level: str = Field(description="`request`, `voice` or `server` (highest precedence first).")
    origin: str = Field(description="`file:line` of a file entry, `request[i]` of a request's.")

    @classmethod
    def of(cls, entry: LexiconEntry) -> LexiconEntryInfo:
        return cls(
            term=entry.term,
            say=entry.say,
            case_sensitive=entry.case_sensitive,
            level=entry.level,
            origin=entry.origin,
        )


class LexiconHitInfo(BaseModel):
    """One respelling that fired: the span of the submitted text it replaced and the entry."""

    char_start: int = Field(description="Start of the replaced word in the submitted text (code points).")
    char_end: int = Field(description="End (exclusive) of the replaced word in the submitted text.")
    matched: str = Field(description="The word as written.")
    entry: LexiconEntryInfo

    @classmethod
    def of(cls, hit: LexiconHit) -> LexiconHitInfo:
        return cls(
            char_start=hit.char_start,
            char_end=hit.char_end,
            matched=hit.matched,
            entry=LexiconEntryInfo.of(hit.entry),
        )


class LexiconResponse(BaseModel):
    """The server's lexicon (``F5VI_LEXICON_PATHS``); changing it is a file operation and a restart."""

    count: int
    entries: list[LexiconEntryInfo]

    @classmethod
    def of(cls, lexicon: Lexicon) -> LexiconResponse:
        return cls(count=len(lexicon), entries=[LexiconEntryInfo.of(e) for e in lexicon.entries])
