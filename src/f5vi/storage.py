"""Where finished audio goes: generated, safe file names; atomic writes; safe look-ups; deletion.

File names are made here from the job id and a random tag (``<job_id>_<8 hex>.<ext>``), never from
user text, and every name coming back from a client is checked against the same pattern before it
touches the file system. :class:`OutputStorage` is the interface the job system uses:

- :class:`LocalOutputStorage`: a directory; the server (HTTP API or RunPod worker) serves the files.
- :class:`BucketMirroredStorage`: the same directory, and every saved file is also uploaded to an
  S3-compatible bucket; :class:`StoredFile` then carries a presigned URL, which the job result keeps,
  ``GET /output`` redirects to and the RunPod worker returns. A failed upload is logged and the local
  copy serves instead (the job does not fail because the bucket is unreachable).

:func:`output_storage` picks the backend from :class:`~f5vi.config.Settings`, for both front doors.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from f5vi.errors import F5viError

if TYPE_CHECKING:
    from f5vi.config import Settings

logger = logging.getLogger(__name__)

SAFE_FILENAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,200}\.[a-z0-9]{1,5}$"
_SAFE_FILENAME_RE = re.compile(SAFE_FILENAME_PATTERN)
_PARTIAL_PREFIX = ".partial-"


class InvalidFilenameError(F5viError, ValueError, code="invalid_filename", http_status=400):
    """A name that this storage would never have produced (path parts, odd characters, ...)."""

    def __init__(self, message: str = "invalid file name") -> None:
        super().__init__(message)


class OutputWriteError(F5viError, code="output_write_failed", http_status=507):
    """A job's audio could not be stored (a full disk, a quota, a permission); the reason is in the
    message. Nothing half-written is left behind."""


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
    remote_url: str | None = None
    """A presigned URL of the uploaded copy (bucket backends only)."""
    remote_url_expires_at: float | None = None


class OutputStorage(ABC):
    shared = False
    """Every instance can hand out what any instance saved (required with a shared job store)."""

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


class StorageConfigError(F5viError, code="storage_misconfigured"):
    """The bucket settings are incomplete (the server refuses to start rather than lose uploads)."""


@dataclass(frozen=True)
class BucketSettings:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    bucket: str
    prefix: str
    url_ttl_seconds: int


class BucketMirroredStorage(LocalOutputStorage):
    """Local files, each also uploaded to an S3-compatible bucket when it is saved.

    ``required`` (several instances on one job store): a failed upload fails the save, since no
    other instance could serve the local copy.
    """

    shared = True

    def __init__(self, root: Path, bucket: BucketSettings, *, required: bool = False) -> None:
        super().__init__(root)
        self.bucket = bucket
        self.required = required
        self._client: Any = None

    def key(self, filename: str) -> str:
        return f"{self.bucket.prefix.strip('/')}/{filename}" if self.bucket.prefix.strip("/") else filename

    def save(self, filename: str, data: bytes) -> StoredFile:
        stored = super().save(filename, data)
        try:
            url = self._upload(filename)
        except Exception as exc:  # the local copy still serves; the job does not fail for this
            if self.required:
                self.delete(filename)
                raise StorageConfigError(f"upload of {filename} to the bucket failed: {exc}") from exc
            logger.error("upload of %s to the bucket failed (%s); serving it locally", filename, exc)
            return stored
        expires = time.time() + self.bucket.url_ttl_seconds
        return replace(stored, remote_url=url, remote_url_expires_at=expires)

    def _upload(self, filename: str) -> str:
        from f5vi.formats import FORMATS

        client = self._s3()
        key = self.key(filename)
        fmt = FORMATS.get(filename.rsplit(".", 1)[-1])
        extra = {"ContentType": fmt.media_type} if fmt is not None else {}
        client.upload_file(str(self._path(filename)), self.bucket.bucket, key, ExtraArgs=extra)
        return str(
            client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket.bucket, "Key": key},
                ExpiresIn=self.bucket.url_ttl_seconds,
            )
        )

    def _s3(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.bucket.endpoint_url,
                aws_access_key_id=self.bucket.access_key_id,
                aws_secret_access_key=self.bucket.secret_access_key,
                config=Config(signature_version="s3v4", retries={"max_attempts": 3, "mode": "standard"}),
            )
        return self._client


def bucket_settings(settings: Settings) -> BucketSettings | None:
    """The bucket to mirror outputs to, None without one; half a configuration is an error."""
    endpoint = settings.s3_endpoint_url
    if not (settings.s3_bucket or endpoint):
        return None
    secrets_ = {
        "BUCKET_ENDPOINT_URL (F5VI_S3_ENDPOINT_URL)": endpoint,
        "BUCKET_ACCESS_KEY_ID (F5VI_S3_ACCESS_KEY_ID)": settings.s3_access_key_id,
        "BUCKET_SECRET_ACCESS_KEY (F5VI_S3_SECRET_ACCESS_KEY)": settings.s3_secret_access_key,
    }
    missing = [name for name, value in secrets_.items() if not value]
    if missing:
        raise StorageConfigError(
            "S3 delivery is configured (F5VI_S3_BUCKET or BUCKET_ENDPOINT_URL) but "
            + ", ".join(missing)
            + " is not set; set all three or neither"
        )
    assert endpoint and settings.s3_access_key_id and settings.s3_secret_access_key
    return BucketSettings(
        endpoint_url=endpoint,
        access_key_id=settings.s3_access_key_id.get_secret_value(),
        secret_access_key=settings.s3_secret_access_key.get_secret_value(),
        # The RunPod SDK's convention when no bucket is named: one bucket per month ("MM-YY").
        bucket=settings.s3_bucket or time.strftime("%m-%y"),
        prefix=settings.s3_prefix,
        url_ttl_seconds=int(settings.s3_url_ttl_seconds),
    )


def output_storage(settings: Settings) -> OutputStorage:
    """The backend ``settings`` ask for: the output directory, mirrored to a bucket if configured."""
    bucket = bucket_settings(settings)
    if bucket is None:
        return LocalOutputStorage(settings.output_dir)
    return BucketMirroredStorage(settings.output_dir, bucket, required=settings.shared_job_store)
