"""Where finished audio goes: generated, safe file names; atomic writes; safe look-ups; deletion.

File names are made here from the job id and a random tag (``<job_id>_<8 hex>.<ext>``), never from
user text, and every name coming back from a client is checked against the same pattern before it
touches the file system. :class:`OutputStorage` is the interface the job system uses; the local
directory is the default backend, an S3-compatible one can implement the same methods (and return
a presigned ``public_url`` instead of a ``local_path``).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SAFE_FILENAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,200}\.[a-z0-9]{1,5}$"
_SAFE_FILENAME_RE = re.compile(SAFE_FILENAME_PATTERN)
_PARTIAL_PREFIX = ".partial-"


class InvalidFilenameError(ValueError):
    """A name that this storage would never have produced (path parts, odd characters, ...)."""


def is_safe_filename(name: str) -> bool:
    return bool(_SAFE_FILENAME_RE.fullmatch(name))


def check_filename(name: str) -> str:
    if not isinstance(name, str) or not is_safe_filename(name):
        raise InvalidFilenameError("invalid file name")
    return name


def make_output_filename(job_id: str, extension: str) -> str:
    """``<job_id>_<random>.<ext>``: unguessable even when the client chose a guessable job id."""
    name = f"{job_id}_{secrets.token_hex(4)}.{extension.lower().lstrip('.')}"
    return check_filename(name)


@dataclass(frozen=True)
class StoredFile:
    filename: str
    size_bytes: int
    modified_at: float


class OutputStorage(ABC):
    """Output files of finished jobs, addressed by the names :func:`make_output_filename` makes."""

    @abstractmethod
    def save(self, filename: str, data: bytes) -> StoredFile:
        """Store ``data`` under ``filename`` atomically: readers see the whole file or none."""

    @abstractmethod
    def exists(self, filename: str) -> bool: ...

    @abstractmethod
    def delete(self, filename: str) -> bool:
        """Remove the file; False if it was not there."""

    @abstractmethod
    def local_path(self, filename: str) -> Path | None:
        """A local file to serve for ``filename``, or None if this backend has no such file."""

    def public_url(self, filename: str) -> str | None:
        """A URL the client can fetch directly (object storage); None: the API serves the file."""
        return None

    @abstractmethod
    def list_files(self) -> Iterator[StoredFile]:
        """Every stored output (not partial writes)."""

    @abstractmethod
    def remove_partials(self, *, older_than_seconds: float = 0.0) -> int:
        """Delete leftovers of writes interrupted by a crash; returns how many were removed."""


class LocalOutputStorage(OutputStorage):
    """A flat directory of output files."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._resolved_root = self.root.resolve()

    def _path(self, filename: str) -> Path:
        check_filename(filename)
        path = self._resolved_root / filename
        # The pattern already excludes separators and "..", this is the second fence.
        if path.parent != self._resolved_root:
            raise InvalidFilenameError("invalid file name")
        return path

    def save(self, filename: str, data: bytes) -> StoredFile:
        final = self._path(filename)
        partial = self._resolved_root / f"{_PARTIAL_PREFIX}{secrets.token_hex(6)}-{filename}"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise
        self._fsync_dir()
        stat = final.stat()
        return StoredFile(filename=filename, size_bytes=stat.st_size, modified_at=stat.st_mtime)

    def _fsync_dir(self) -> None:
        fd = os.open(self._resolved_root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def exists(self, filename: str) -> bool:
        return self.local_path(filename) is not None

    def delete(self, filename: str) -> bool:
        path = self._path(filename)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def local_path(self, filename: str) -> Path | None:
        path = self._path(filename)
        if path.is_symlink() or not path.is_file():
            return None
        return path

    def list_files(self) -> Iterator[StoredFile]:
        with os.scandir(self._resolved_root) as entries:
            for entry in entries:
                if not is_safe_filename(entry.name) or not entry.is_file(follow_symlinks=False):
                    continue
                stat = entry.stat(follow_symlinks=False)
                yield StoredFile(entry.name, stat.st_size, stat.st_mtime)

    def remove_partials(self, *, older_than_seconds: float = 0.0) -> int:
        cutoff = time.time() - older_than_seconds
        removed = 0
        with os.scandir(self._resolved_root) as entries:
            for entry in entries:
                if not entry.name.startswith(_PARTIAL_PREFIX) or not entry.is_file(follow_symlinks=False):
                    continue
                if entry.stat(follow_symlinks=False).st_mtime <= cutoff:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed += 1
        return removed
