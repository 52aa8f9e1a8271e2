"""Character vocabulary and the tokenizer that feeds the text embedding.

The checkpoint was trained on text that went through upstream F5-TTS's ``convert_char_to_pinyin`` and
``list_str_to_idx``, so by default :meth:`Vocab.tokenize` reproduces that transformation exactly
(``tests/golden/text_cases.json`` "tokenize" is the reference):

* ``;`` becomes ``,`` and curly quotes become straight ones;
* the text is segmented with jieba (``rjieba``, the Rust port upstream uses). jieba keeps runs of ASCII
  letters/digits together but yields every other non-CJK character on its own, so "trường" comes out as
  ``tr`` ``ư`` ``ờ`` ``ng``; upstream then puts a space before every pure-ASCII segment longer than one byte
  unless the previous token is a space, colon or quote. The net effect is "trường" -> "trườ ng",
  "đang" -> "đ ang". We call rjieba ourselves, so the segmentation matches by construction;
* Chinese characters would be turned into pinyin with ``pypinyin``. f5vi does not ship pypinyin (a
  Vietnamese service does not need it), so they are kept as characters, preceded by the space upstream
  inserts, and reported as *unsupported*.

``mode="char"`` is the plain alternative: the same ``;``/quote translation, then one token per character.

Characters missing from the vocabulary still map to id 0 (the space) so the numerics match upstream, but
they are reported (:class:`TokenReport`) instead of disappearing silently. Whitespace that is not in the
vocab (newline, tab) is not reported: id 0 *is* a space, which is exactly what it should become.
"""

from __future__ import annotations

import logging
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import rjieba
import torch

from f5vi.engine.errors import ModelLoadError

log = logging.getLogger(__name__)

TokenizerMode = Literal["upstream", "char"]

PAD_ID = -1
"""Padding value of :meth:`Vocab.encode`, as upstream's ``list_str_to_idx``."""

_UPSTREAM_TRANSLATION = str.maketrans({";": ",", "\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})
_NO_SPACE_AFTER = frozenset(" :'\"")

# Vietnamese letters in both cases; used to decide whether a vocab "has uppercase".
_VI_LOWER = "aăâbcdđeêghiklmnoôơpqrstuưvxy" + "".join(
    unicodedata.normalize("NFC", base + mark)
    for base in "aăâeêioôơuưy"
    for mark in ("\u0300", "\u0301", "\u0309", "\u0303", "\u0323")
)


def _is_chinese(char: str) -> bool:
    """Upstream's test for "insert a space and convert to pinyin" (mixed segments)."""
    return "\u3100" <= char <= "\u9fff"


def _needs_pinyin(char: str) -> bool:
    """Han characters that upstream would replace by pypinyin output (we cannot: no pypinyin)."""
    return (
        char == "\u3007"
        or "\u3400" <= char <= "\u4dbf"
        or "\u4e00" <= char <= "\u9fff"
        or "\uf900" <= char <= "\ufaff"
        or "\U00020000" <= char <= "\U0002ebef"
    )


def upstream_char_tokens(text: str) -> tuple[list[str], Counter[str]]:
    """Tokens exactly as upstream ``convert_char_to_pinyin`` produces them for one text.

    Returns the tokens and a counter of Han characters that upstream would have turned into pinyin
    (kept here as characters; see the module docstring).
    """
    tokens: list[str] = []
    unsupported: Counter[str] = Counter()
    for seg in rjieba.cut(text.translate(_UPSTREAM_TRANSLATION)):
        n_bytes = len(seg.encode("utf-8"))
        if n_bytes == len(seg):
            # pure ASCII segment: the space rule that splits "trường" into "trườ ng"
            if tokens and n_bytes > 1 and tokens[-1] not in _NO_SPACE_AFTER:
                tokens.append(" ")
            tokens.extend(seg)
        else:
            # a segment of 3-byte characters goes through pypinyin whole, any other only its Han
            # characters; either way only Han characters change (and get a space before them)
            whole = n_bytes == 3 * len(seg)
            for char in seg:
                chinese = _is_chinese(char)
                if chinese:
                    tokens.append(" ")
                if _needs_pinyin(char) and (whole or chinese):
                    unsupported[char] += 1
                tokens.append(char)
    return tokens, unsupported


def plain_char_tokens(text: str) -> tuple[list[str], Counter[str]]:
    """One token per character, after the same ``;``/quote translation as upstream."""
    tokens = list(text.translate(_UPSTREAM_TRANSLATION))
    return tokens, Counter(c for c in tokens if _needs_pinyin(c))


@dataclass(frozen=True)
class TokenReport:
    """What the vocabulary cannot represent in some tokenized text."""

    oov: Mapping[str, int]
    """Tokens missing from the vocab (mapped to id 0) -> occurrences, in order of first appearance."""
    unsupported: Mapping[str, int]
    """Han characters upstream would convert to pinyin (not supported without pypinyin) -> occurrences."""

    @property
    def ok(self) -> bool:
        return not self.oov and not self.unsupported

    def warnings(self) -> list[str]:
        out: list[str] = []
        if self.oov:
            total = sum(self.oov.values())
            listed = ", ".join(f"{c!r}×{n}" for c, n in self.oov.items())
            out.append(f"{total} character(s) not in the model vocabulary were read as a space: {listed}")
        if self.unsupported:
            total = sum(self.unsupported.values())
            listed = ", ".join(f"{c!r}×{n}" for c, n in self.unsupported.items())
            out.append(f"{total} Chinese character(s) are not supported (no pinyin conversion): {listed}")
        return out


def _merge_counts(counters: Iterable[Mapping[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for counter in counters:
        for key, value in counter.items():
            merged[key] = merged.get(key, 0) + value
    return merged


@dataclass(frozen=True)
class EncodedBatch:
    ids: torch.Tensor
    """int64 [B, nt], right-padded with -1."""
    tokens: list[list[str]]
    report: TokenReport


class Vocab:
    """Token -> id map read from a vocab file (one token per line, id = line number, line 0 a space)."""

    def __init__(
        self,
        tokens: Sequence[str],
        *,
        mode: TokenizerMode = "upstream",
        source: str | None = None,
    ) -> None:
        if not tokens:
            raise ModelLoadError(f"vocabulary is empty ({source or 'no source'})")
        if mode not in ("upstream", "char"):
            raise ValueError(f"unknown tokenizer mode {mode!r}")
        self._lines = list(tokens)
        # later duplicates win, like upstream's dict comprehension over the file
        self._ids: dict[str, int] = {}
        for index, token in enumerate(self._lines):
            self._ids[token] = index
        self.mode: TokenizerMode = mode
        self.source = source
        if self._lines[0] != " ":
            log.warning(
                "vocab %s: line 0 is %r, not a space; unknown characters map to id 0",
                source,
                self._lines[0],
            )

    @classmethod
    def from_file(cls, path: str | Path, *, mode: TokenizerMode = "upstream") -> Vocab:
        """Read ``vocab.txt`` or the Vietnamese checkpoint's ``config.json`` (same one-token-per-line format).

        Only the line terminator is removed (a token can be a space). Line breaks are read as Python's
        text mode reads them, which is how upstream reads the file.
        """
        path = Path(path)
        try:
            with path.open(encoding="utf-8") as handle:
                raw_lines = list(handle)
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelLoadError(f"cannot read vocab file {path}: {exc}") from exc
        if not raw_lines:
            raise ModelLoadError(f"vocab file {path} is empty")
        if raw_lines[0].lstrip().startswith("{"):
            raise ModelLoadError(
                f"{path} looks like a JSON model config, not a vocab (expected one token per line, "
                "line 0 a space)"
            )
        tokens = []
        for line in raw_lines:
            tokens.append(line[:-1] if line.endswith("\n") else line)
        if not raw_lines[-1].endswith("\n"):
            # upstream strips the last character of every line, so it would have cut this token short
            log.warning(
                "vocab %s: last line %r has no newline; upstream would have read it as %r",
                path,
                tokens[-1],
                tokens[-1][:-1],
            )
        return cls(tokens, mode=mode, source=str(path))

    # --- mapping -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of distinct tokens: upstream's ``vocab_size`` (the embedding has this + 1 rows)."""
        return len(self._ids)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    @property
    def line_count(self) -> int:
        return len(self._lines)

    @property
    def char_to_id(self) -> Mapping[str, int]:
        return dict(self._ids)

    def id_of(self, token: str) -> int:
        """The token's id, 0 (the space) when it is not in the vocab."""
        return self._ids.get(token, 0)

    @property
    def has_uppercase(self) -> bool:
        """True only if every uppercase Vietnamese letter is in the vocab.

        The Vietnamese checkpoint's vocab has the ASCII capitals of the base vocab but not capital
        accented vowels, and it was trained on lowercased text: for it this is False.
        """
        return all(c.upper() in self._ids for c in _VI_LOWER)

    # --- tokenizing --------------------------------------------------------------------------------
    def tokenize_with_report(
        self, text: str, mode: TokenizerMode | None = None
    ) -> tuple[list[str], TokenReport]:
        mode = mode or self.mode
        tokens, unsupported = upstream_char_tokens(text) if mode == "upstream" else plain_char_tokens(text)
        return tokens, TokenReport(oov=self._oov(tokens), unsupported=dict(unsupported))

    def tokenize(self, text: str, mode: TokenizerMode | None = None) -> list[str]:
        """The token list upstream feeds the model (``mode="upstream"``) or plain characters."""
        return self.tokenize_with_report(text, mode)[0]

    def check(self, text: str, mode: TokenizerMode | None = None) -> TokenReport:
        """OOV / unsupported characters of ``text`` after tokenization."""
        return self.tokenize_with_report(text, mode)[1]

    def _oov(self, tokens: Iterable[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for token in tokens:
            if token not in self._ids and not token.isspace():
                counts[token] = counts.get(token, 0) + 1
        return counts

    # --- encoding ----------------------------------------------------------------------------------
    def encode_with_report(
        self, texts: Sequence[str | Sequence[str]], mode: TokenizerMode | None = None
    ) -> EncodedBatch:
        """Ids of a batch, padded with -1 like upstream's ``list_str_to_idx``.

        A ``str`` item is tokenized first; a list item is taken as an already tokenized sequence.
        Unknown tokens become 0 and are listed in the report (and logged).
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a batch: a list of texts, not a single string")
        if len(texts) == 0:
            raise ValueError("encode() needs at least one text")
        all_tokens: list[list[str]] = []
        oov: list[Mapping[str, int]] = []
        unsupported: list[Mapping[str, int]] = []
        for item in texts:
            if isinstance(item, str):
                tokens, report = self.tokenize_with_report(item, mode)
                oov.append(report.oov)
                unsupported.append(report.unsupported)
            else:
                tokens = list(item)
                oov.append(self._oov(tokens))
            all_tokens.append(tokens)
        width = max(len(t) for t in all_tokens)
        ids = torch.full((len(all_tokens), width), PAD_ID, dtype=torch.long)
        for row, tokens in enumerate(all_tokens):
            if tokens:
                ids[row, : len(tokens)] = torch.tensor([self.id_of(t) for t in tokens], dtype=torch.long)
        report = TokenReport(oov=_merge_counts(oov), unsupported=_merge_counts(unsupported))
        for warning in report.warnings():
            log.warning("%s", warning)
        return EncodedBatch(ids=ids, tokens=all_tokens, report=report)

    def encode(self, texts: Sequence[str | Sequence[str]], mode: TokenizerMode | None = None) -> torch.Tensor:
        """LongTensor [B, nt] of ids, padded with -1 (see :meth:`encode_with_report` for the OOV report)."""
        return self.encode_with_report(texts, mode).ids
