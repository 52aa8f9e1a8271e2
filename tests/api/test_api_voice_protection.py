"""Shipped voices are immutable through the API (issue 12, item 3); uploads live in the data dir and stay
manageable; a multipart transcript that is not valid UTF-8 is refused, not stored as mojibake (item 4)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from f5vi.config import Settings
from server_helpers import REPO_ROOT, assert_error_shape, loading_app_client, wav_bytes

SHIPPED = ("vi_central_male", "vi_north_male", "vi_south_male")


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture
def shipped_copy(tmp_path: Path) -> Path:
    """The repository's voices directory, copied: a regression must not delete the real one."""
    target = tmp_path / "voices"
    shutil.copytree(REPO_ROOT / "voices", target)
    return target


@pytest.fixture
def settings(tmp_path: Path, shipped_copy: Path) -> Settings:
    """Defaults as shipped: no API key, shipped voices in voices_dir, uploads in data_dir/voices."""
    return Settings(
        data_dir=tmp_path / "data",
        output_dir=tmp_path / "output",
        voices_dir=shipped_copy,
        cleanup_interval_seconds=0,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with loading_app_client(settings) as c:
        yield c


def _upload(client: TestClient, voice_id: str, **extra: str) -> Any:
    files = {"file": ("clip.wav", wav_bytes(), "audio/wav")}
    return client.post("/voices", files=files, data={"voice_id": voice_id, "transcript": "xin chào", **extra})


def test_shipped_voices_cannot_be_deleted_or_overwritten(client: TestClient, shipped_copy: Path) -> None:
    before = _files(shipped_copy)
    for voice_id in SHIPPED:
        assert_error_shape(client.delete(f"/voices/{voice_id}"), 403, "voice_read_only")
        assert_error_shape(_upload(client, voice_id, overwrite="true"), 403, "voice_read_only")
        assert_error_shape(_upload(client, voice_id), 403, "voice_read_only")
        assert client.get(f"/voices/{voice_id}").json()["read_only"] is True
    assert _files(shipped_copy) == before
    listed = {v["id"]: v for v in client.get("/voices").json()["voices"]}
    assert set(SHIPPED) <= set(listed) and all(listed[v]["read_only"] for v in SHIPPED)


def test_uploads_go_to_the_data_dir_and_stay_manageable(
    client: TestClient, settings: Settings, shipped_copy: Path
) -> None:
    before = _files(shipped_copy)
    created = _upload(client, "mine")
    assert created.status_code == 201, created.text
    assert created.json()["read_only"] is False and created.json()["path"] == "voices/mine.wav"
    assert (settings.data_dir / "voices" / "mine.wav").is_file()
    assert_error_shape(_upload(client, "mine"), 409, "voice_exists")
    assert _upload(client, "mine", overwrite="true").status_code == 201
    assert client.delete("/voices/mine").json() == {"status": "deleted", "id": "mine"}
    assert not (settings.data_dir / "voices" / "mine.wav").exists()
    assert _files(shipped_copy) == before


def test_invalid_utf8_transcript_is_refused(client: TestClient, settings: Settings) -> None:
    files = {"file": ("clip.wav", wav_bytes(), "audio/wav")}
    raw = b"Xin \xed\xa0\x80 ch\xff\xfeao"
    response = client.post("/voices", files=files, data={"voice_id": "moji", "transcript": raw})
    body = assert_error_shape(response, 422, "validation_error")
    assert body["error"]["details"][0]["field"] == "transcript"
    assert not (settings.data_dir / "voices" / "moji.wav").exists()
    # Valid UTF-8, including letters latin-1 also has (à), is kept exactly.
    ok = client.post("/voices", files=files, data={"voice_id": "ok", "transcript": "Xin chào".encode()})
    assert ok.status_code == 201, ok.text
    assert ok.json()["transcript"] == "Xin chào"


def test_invalid_utf8_voice_id_is_refused(client: TestClient) -> None:
    files = {"file": ("clip.wav", wav_bytes(), "audio/wav")}
    response = client.post("/voices", files=files, data={"voice_id": b"v\xff1", "transcript": "xin chào"})
    assert_error_shape(response, 422, "validation_error")
