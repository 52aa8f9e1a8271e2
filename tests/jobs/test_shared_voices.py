"""Uploaded voices shared by two instances through a real PostgreSQL database (jobs/shared_voices.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from f5vi.jobs.shared_voices import SharedVoiceLibrary, voice_library
from f5vi.voices.errors import VoiceExistsError, VoiceNotFoundError
from f5vi.voices.library import VoiceLibrary
from server_helpers import local_settings, wav_bytes


def instance(root: Path, url: str) -> SharedVoiceLibrary:
    library = voice_library(local_settings(root, database_url=url))
    assert isinstance(library, SharedVoiceLibrary)
    return library


def test_an_upload_on_one_instance_is_used_listed_replaced_and_deleted_on_the_other(
    tmp_path: Path, pg_url: str
) -> None:
    a, b = instance(tmp_path / "a", pg_url), instance(tmp_path / "b", pg_url)
    try:
        a.upload("spk", wav_bytes(3.0), "xin chào các bạn.")
        voice = b.resolve("spk")  # never uploaded to b: fetched from the table
        assert voice.transcript == "xin chào các bạn."
        assert voice.audio_path.read_bytes() == (tmp_path / "a/data/voices/spk.wav").read_bytes()
        assert "spk" in [v.id for v in b.list()]
        with pytest.raises(VoiceExistsError):
            b.upload("spk", wav_bytes(2.0), "khác.")  # taken on another instance
        b.upload("spk", wav_bytes(2.0), "giọng mới.", overwrite=True)
        assert a.get("spk").transcript == "giọng mới."  # a's copy is replaced before use
        a.delete("spk")
        with pytest.raises(VoiceNotFoundError):
            b.get("spk")
        assert "spk" not in [v.id for v in b.list()]
        assert not (tmp_path / "b/data/voices/spk.wav").exists()
    finally:
        a.close()
        b.close()


def test_uploads_made_before_sharing_are_adopted_not_lost(tmp_path: Path, pg_url: str) -> None:
    VoiceLibrary(tmp_path / "a/data/voices", None).upload("old", wav_bytes(2.0), "giọng cũ.")  # SQLite days
    a, b = instance(tmp_path / "a", pg_url), instance(tmp_path / "b", pg_url)
    try:
        assert [v.id for v in a.list()] == ["old"]  # kept, and written to the table
        assert b.get("old").transcript == "giọng cũ."
    finally:
        a.close()
        b.close()


def test_sqlite_keeps_the_plain_library(tmp_path: Path) -> None:
    library = voice_library(local_settings(tmp_path))
    assert type(library) is VoiceLibrary
