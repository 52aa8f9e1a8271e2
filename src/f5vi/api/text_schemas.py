"""Schemas of the text front end's reports: lexicon entries and where they fired (``GET /lexicon``,
``POST /normalize``)."""

from __future__ import annotations

from pydantic import BaseModel

from f5vi.engine.text.lexicon import Lexicon

# the report models live below the API (the CLI prints them too)
from f5vi.jobs.normalize_report import LexiconEntryInfo as LexiconEntryInfo
from f5vi.jobs.normalize_report import LexiconHitInfo as LexiconHitInfo


class LexiconResponse(BaseModel):
    """The server's lexicon (``F5VI_LEXICON_PATHS``); changing it is a file operation and a restart."""

    count: int
    entries: list[LexiconEntryInfo]

    @classmethod
    def of(cls, lexicon: Lexicon) -> LexiconResponse:
        return cls(count=len(lexicon), entries=[LexiconEntryInfo.of(e) for e in lexicon.entries])
