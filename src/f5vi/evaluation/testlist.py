"""The test list: ``<voice id><TAB><text>`` per line, ``## category`` headers, ``#`` comments."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from f5vi.engine.errors import InvalidParameterError


@dataclass(frozen=True)
class Utterance:
    id: str
    voice: str
    text: str
    category: str


def default_list_text() -> str:
    """The shipped Vietnamese list (100 sentences: short, numbers, dates, names, loanwords, ...)."""
    return resources.files("f5vi.evaluation").joinpath("vi_test_list.tsv").read_text(encoding="utf-8")


def parse_list(text: str, *, source: str = "the test list") -> list[Utterance]:
    utterances: list[Utterance] = []
    category = "general"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("##"):
            category = line.lstrip("#").strip() or "general"
            continue
        if line.startswith("#"):
            continue
        voice, sep, sentence = raw.partition("\t")
        if not sep or not voice.strip() or not sentence.strip():
            raise InvalidParameterError(
                f"{source} line {number}: expected '<voice id><TAB><text>', got {line[:60]!r}"
            )
        utterances.append(Utterance(f"u{len(utterances) + 1:03d}", voice.strip(), sentence.strip(), category))
    if not utterances:
        raise InvalidParameterError(f"{source} has no utterances")
    return utterances


def load_list(path: Path | None, limit: int | None = None) -> list[Utterance]:
    """The list at ``path`` (default: the shipped one), its first ``limit`` utterances."""
    text = default_list_text() if path is None else Path(path).read_text(encoding="utf-8")
    utterances = parse_list(text, source=str(path or "the shipped test list"))
    return utterances[:limit] if limit is not None else utterances
