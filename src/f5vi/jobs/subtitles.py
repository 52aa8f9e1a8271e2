"""Subtitles (SRT, WebVTT, JSON cues) from a result's timestamps, showing the text as submitted.

Torch-free: the HTTP route, the RunPod worker and the CLI format the timestamps dict a result carries
(:meth:`f5vi.engine.timing.types.Timestamps.to_dict`). Broadcast conventions (EBU/BBC/Netflix-style):

- at most :data:`MAX_LINE_CHARS` characters per line and :data:`MAX_LINES` lines per cue;
- cues last :data:`MIN_CUE_SECONDS`–:data:`MAX_CUE_SECONDS` (a short cue is held on screen longer
  when the next one leaves room; cues never overlap);
- a cue ends at a sentence end when it can, else at a clause mark (``, ; :``), and never inside a word
  (the units are the submitted text's whitespace-separated tokens; one token longer than a line is
  the only thing that can exceed it);
- lines break at the most balanced place, preferring just after punctuation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

MAX_LINE_CHARS = 42
MAX_LINES = 2
MIN_CUE_SECONDS = 1.0
MAX_CUE_SECONDS = 7.0
SubtitleFormat = Literal["srt", "vtt", "json"]
MEDIA_TYPES: dict[str, str] = {
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "json": "application/json",
}

_SENTENCE_END = re.compile(r"[.!?…][\"')\]}»”’]*$")
_CLAUSE_END = re.compile(r"[,;:][\"')\]}»”’]*$")


@dataclass(frozen=True)
class Token:
    """A token of the submitted text and when it is said (its spoken words' span)."""

    text: str
    start: float
    end: float
    char_start: int
    char_end: int


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]
    char_start: int
    char_end: int

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def tokens(text: str, timestamps: dict[str, Any]) -> list[Token]:
    """The submitted text's tokens in speaking order, each timed by the words read from it."""
    out: list[Token] = []
    for word in timestamps.get("words", []):
        span = (int(word["char_start"]), int(word["char_end"]))
        if out and (out[-1].char_start, out[-1].char_end) == span:
            last = out[-1]
            out[-1] = Token(last.text, last.start, max(last.end, float(word["end"])), *span)
        else:
            written = " ".join(text[span[0] : span[1]].replace("[[", "[").split())
            out.append(Token(written, float(word["start"]), float(word["end"]), *span))
    return out


def wrap(words: list[str]) -> tuple[str, ...] | None:
    """``words`` on at most two lines of at most 42 characters, balanced; None when they do not fit."""
    one = " ".join(words)
    if len(one) <= MAX_LINE_CHARS or len(words) == 1:
        return (one,)
    best: tuple[tuple[int, int], tuple[str, str]] | None = None
    for cut in range(1, len(words)):
        top, bottom = " ".join(words[:cut]), " ".join(words[cut:])
        if len(top) > MAX_LINE_CHARS or len(bottom) > MAX_LINE_CHARS:
            continue
        after_mark = 0 if _CLAUSE_END.search(words[cut - 1]) or _SENTENCE_END.search(words[cut - 1]) else 1
        score = (after_mark * 12 + abs(len(top) - len(bottom)), len(top))
        if best is None or score < best[0]:
            best = (score, (top, bottom))
    return best[1] if best else None


def _cut(run: list[Token]) -> int:
    """How many tokens of a full ``run`` make the cue: after its last punctuation if that is not too
    early (a cue of under a second or a handful of characters), else all of them."""
    for i in range(len(run) - 1, 0, -1):
        text = run[i - 1].text
        marked = _SENTENCE_END.search(text) or _CLAUSE_END.search(text)
        if marked and i >= 2 and run[i - 1].end - run[0].start >= MIN_CUE_SECONDS:
            return i
    return len(run)


def cues(text: str, timestamps: dict[str, Any]) -> list[Cue]:
    """Cues for ``text`` (as submitted) and its result's timestamps (see the module docstring)."""
    items = tokens(text, timestamps)
    groups: list[list[Token]] = []
    run: list[Token] = []
    for token in items:
        candidate = [*run, token]
        too_long = candidate[-1].end - candidate[0].start > MAX_CUE_SECONDS
        if run and (too_long or wrap([t.text for t in candidate]) is None):
            keep = _cut(run)
            groups.append(run[:keep])
            run = run[keep:]
            candidate = [*run, token]
        run = candidate
        if _SENTENCE_END.search(token.text) and run[-1].end - run[0].start >= MIN_CUE_SECONDS:
            groups.append(run)
            run = []
    if run:
        groups.append(run)
    return _timed(groups)


def _timed(groups: list[list[Token]]) -> list[Cue]:
    """Cues from token groups: held to at least a second where the next cue leaves room, no overlap."""
    out: list[Cue] = []
    for i, group in enumerate(groups):
        start = group[0].start if not out else max(group[0].start, out[-1].end)
        limit = groups[i + 1][0].start if i + 1 < len(groups) else None
        end = max(group[-1].end, start + MIN_CUE_SECONDS)
        if limit is not None:
            end = min(end, max(limit, group[-1].end))
        end = min(end, start + MAX_CUE_SECONDS)
        lines = wrap([t.text for t in group]) or (" ".join(t.text for t in group),)
        out.append(Cue(round(start, 3), round(max(end, start + 0.001), 3), lines, group[0].char_start,
                       group[-1].char_end))  # fmt: skip
    return out


def _clock(seconds: float, mark: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{mark}{millis:03d}"


def to_srt(items: list[Cue]) -> str:
    blocks = [
        f"{n}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n{c.text}\n" for n, c in enumerate(items, 1)
    ]
    return "\n".join(blocks)


def to_vtt(items: list[Cue]) -> str:
    blocks = [f"{_clock(c.start, '.')} --> {_clock(c.end, '.')}\n{_vtt_escape(c.text)}\n" for c in items]
    return "WEBVTT\n\n" + "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    # "-->" may not appear in a cue's text, and < & start markup
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_json(items: list[Cue], timestamps: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": timestamps.get("method"),
        "cues": [
            {
                "start": c.start,
                "end": c.end,
                "text": c.text,
                "lines": list(c.lines),
                "char_start": c.char_start,
                "char_end": c.char_end,
            }
            for c in items
        ],
    }


def render(text: str, timestamps: dict[str, Any], fmt: SubtitleFormat) -> str | dict[str, Any]:
    """Subtitles of ``fmt`` (the JSON form as a dict)."""
    items = cues(text, timestamps)
    if fmt == "srt":
        return to_srt(items)
    if fmt == "vtt":
        return to_vtt(items)
    return to_json(items, timestamps)
