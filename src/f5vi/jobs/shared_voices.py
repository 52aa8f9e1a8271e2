"""Uploaded voices shared by several instances through the PostgreSQL database.

Decision: the **database**, not the bucket. A voice is small (a clip of at most
``max_reference_seconds``, a transcript, a little metadata), its id must be unique across instances
at the moment of upload (the table's primary key decides, atomically, as the job table does for job
ids), and a delete must be seen by every instance before its next use; a bucket gives none of that
without a second index. The bucket stays what it is for: large outputs handed to clients.

:class:`SharedVoiceLibrary` is the :class:`~f5vi.voices.library.VoiceLibrary` of such an instance:
its upload directory is a cache of table ``shared_voices``. Before a voice is used, listed, uploaded
over or deleted, the instance compares the row's digest with what it holds and fetches, replaces or
removes its copy; an upload or a new transcript is written to the table after the local write. A
hidden marker ``.shared-<id>.digest`` beside a copy says it came from the table, so a copy whose row is
gone was deleted elsewhere and is removed, while an upload made before the instance was switched to
PostgreSQL (no marker) is *adopted*: written to the table, not lost. The shipped and operator
(read-only) voices are each instance's own files, as before.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from f5vi.config import Settings
from f5vi.jobs.pg_database import PostgresDatabase
from f5vi.jobs.store import POSTGRES_MIGRATIONS
from f5vi.voices.directory import Voice
from f5vi.voices.errors import VoiceExistsError
from f5vi.voices.library import VoiceLibrary
from f5vi.voices.names import AUDIO_SUFFIX, METADATA_SUFFIX, TRANSCRIPT_SUFFIX


def voice_library(settings: Settings, transcriber: Any = None) -> VoiceLibrary:
    """The server's voice library: shared through the database when the job store is PostgreSQL."""
    if settings.shared_job_store:
        return SharedVoiceLibrary.for_settings(settings, transcriber)
    return VoiceLibrary.from_settings(settings, transcriber)


class SharedVoiceLibrary(VoiceLibrary):
    def __init__(self, *args: Any, database_url: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._db = PostgresDatabase(database_url, POSTGRES_MIGRATIONS, name="voice table")

    @classmethod
    def for_settings(cls, settings: Settings, transcriber: Any = None) -> SharedVoiceLibrary:
        return cls(
            settings.uploaded_voices_path,
            transcriber,
            settings.max_reference_seconds,
            target_rms=settings.target_rms,
            max_upload_bytes=settings.max_upload_bytes,
            read_only_dirs=settings.read_only_voice_dirs,
            database_url=settings.job_database_url,
        )

    # ------------------------------------------------------------------ the table
    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        self._db.open()
        with self._db.lock:
            return list(self._db.connection.execute(sql, params).fetchall())

    def _marker(self, voice_id: str) -> Path:
        return self.voices_dir / f".shared-{voice_id}.digest"

    def _held(self, voice_id: str) -> str | None:
        """Digest of the table's version this instance holds a copy of (None: not from the table)."""
        try:
            return self._marker(voice_id).read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None

    def _mark(self, voice_id: str, digest: str | None) -> None:
        if digest is None:
            self._marker(voice_id).unlink(missing_ok=True)
        else:
            self._marker(voice_id).write_text(digest + "\n", encoding="ascii")

    def _sync(self, voice_id: str) -> None:
        """Make the local copy of uploaded voice ``voice_id`` what the table says."""
        if self._read_only_home(voice_id) is not None:
            return
        rows = self._query("SELECT digest FROM shared_voices WHERE voice_id = ?", (voice_id,))
        with self._lock:
            self._reconcile(voice_id, rows[0][0] if rows else None)

    def _reconcile(self, voice_id: str, digest: str | None) -> None:
        local = self._uploads.has(voice_id)
        if digest is None:
            if local and self._held(voice_id) is not None:  # came from the table, deleted elsewhere
                self._uploads.remove(voice_id)
                self._mark(voice_id, None)
            elif local and not self._publish(voice_id, overwrite=False):  # adopt a pre-sharing upload
                self._fetch(voice_id)
        elif not local or self._held(voice_id) != digest:
            self._fetch(voice_id)

    def _fetch(self, voice_id: str) -> None:
        rows = self._query(
            "SELECT digest, audio, transcript, metadata FROM shared_voices WHERE voice_id = ?", (voice_id,)
        )
        if not rows:
            return
        digest, audio, transcript, metadata = rows[0]
        # transcript and metadata first, audio last: the .wav appearing is what makes the voice exist
        if transcript is not None:
            self._uploads.write_text(voice_id, TRANSCRIPT_SUFFIX, transcript)
        if metadata is not None:
            self._uploads.write_bytes(voice_id, METADATA_SUFFIX, bytes(metadata))
        self._uploads.write_bytes(voice_id, AUDIO_SUFFIX, bytes(audio))
        self._mark(voice_id, digest)

    def _publish(self, voice_id: str, *, overwrite: bool) -> bool:
        """Write the local files of ``voice_id`` to the table. False: without ``overwrite`` the id was
        taken meanwhile elsewhere (two instances uploading one id at once); nothing written."""
        audio = self._uploads.file(voice_id, AUDIO_SUFFIX).read_bytes()
        transcript_path = self._uploads.file(voice_id, TRANSCRIPT_SUFFIX)
        metadata_path = self._uploads.file(voice_id, METADATA_SUFFIX)
        transcript = transcript_path.read_text(encoding="utf-8") if transcript_path.is_file() else None
        metadata = metadata_path.read_bytes() if metadata_path.is_file() else None
        digest = hashlib.sha256(
            audio + b"\0" + (transcript or "").encode() + b"\0" + (metadata or b"")
        ).hexdigest()
        action = (
            "DO UPDATE SET digest = excluded.digest, audio = excluded.audio,"
            " transcript = excluded.transcript, metadata = excluded.metadata,"
            " updated_at = excluded.updated_at"
            if overwrite
            else "DO NOTHING"
        )
        self._db.open()
        with self._db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO shared_voices (voice_id, digest, audio, transcript, metadata, updated_at)"
                f" VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (voice_id) {action}",
                (voice_id, digest, audio, transcript, metadata, time.time()),
            )
            written = cur.rowcount == 1
        if written:
            self._mark(voice_id, digest)
        return written

    # ------------------------------------------------------------------ VoiceLibrary
    def _home(self, voice_id: str) -> Any:
        self._sync(voice_id)
        return super()._home(voice_id)

    def _refuse_taken(self, voice_id: str, overwrite: bool) -> None:
        self._sync(voice_id)
        super()._refuse_taken(voice_id, overwrite)

    def list(self) -> list[Voice]:
        shared = {row[0]: row[1] for row in self._query("SELECT voice_id, digest FROM shared_voices")}
        with self._lock:
            for voice_id in sorted(set(self._uploads.ids()) | set(shared)):
                if self._read_only_home(voice_id) is None:
                    self._reconcile(voice_id, shared.get(voice_id))
        return super().list()

    def upload(self, voice_id: str, data: bytes, *args: Any, overwrite: bool = False, **kwargs: Any) -> Voice:
        voice = super().upload(voice_id, data, *args, overwrite=overwrite, **kwargs)
        if not self._publish(voice.id, overwrite=overwrite):
            with self._lock:
                self._uploads.remove(voice.id)
            raise VoiceExistsError(f"voice {voice.id!r} already exists")
        return voice

    def ensure_transcript(self, voice: Voice) -> Voice:
        result = super().ensure_transcript(voice)
        if result.transcript != voice.transcript and self._read_only_home(voice.id) is None:
            self._publish(voice.id, overwrite=True)
        return result

    def delete(self, voice_id: str) -> None:
        super().delete(voice_id)
        self._db.open()
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM shared_voices WHERE voice_id = ?", (voice_id,))
        self._mark(voice_id, None)

    def close(self) -> None:
        self._db.close()
