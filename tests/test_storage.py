"""Output storage: generated names only, atomic writes, no way out of the directory."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from f5vi.storage import (
    InvalidFilenameError,
    LocalOutputStorage,
    check_filename,
    is_safe_filename,
    make_output_filename,
)


def test_generated_names_hold_no_user_text_and_are_unguessable() -> None:
    a = make_output_filename("job_123", "wav")
    b = make_output_filename("job_123", "wav")
    assert re.fullmatch(r"job_123_[0-9a-f]{8}\.wav", a)
    assert a != b
    assert is_safe_filename(a)


@pytest.mark.parametrize(
    "name",
    [
        "../x.wav",
        "..",
        "a/b.wav",
        "a\\b.wav",
        "/etc/passwd",
        ".hidden.wav",
        ".partial-abc-x.wav",
        "x.wav\x00",
        "%2e%2e%2fx.wav",
        "tiếng.wav",
        "x",
        "x.",
        "x.WAV.",
        "a" * 300 + ".wav",
        "",
        "x wav.wav",
    ],
)
def test_unsafe_names_are_refused(tmp_path: Path, name: str) -> None:
    storage = LocalOutputStorage(tmp_path / "out")
    assert not is_safe_filename(name)
    with pytest.raises(InvalidFilenameError):
        check_filename(name)
    with pytest.raises(InvalidFilenameError):
        storage.local_path(name)
    with pytest.raises(InvalidFilenameError):
        storage.delete(name)
    with pytest.raises(InvalidFilenameError):
        storage.save(name, b"x")


def test_save_read_delete(tmp_path: Path) -> None:
    storage = LocalOutputStorage(tmp_path / "out")
    name = make_output_filename("job_a", "wav")
    stored = storage.save(name, b"RIFF1234")
    assert stored.size_bytes == 8
    path = storage.local_path(name)
    assert path is not None and path.read_bytes() == b"RIFF1234"
    assert storage.exists(name)
    assert [f.filename for f in storage.list_files()] == [name]
    # no temporary file is left next to it
    assert sorted(os.listdir(tmp_path / "out")) == [name]
    assert storage.delete(name) is True
    assert storage.delete(name) is False
    assert storage.local_path(name) is None


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    storage = LocalOutputStorage(tmp_path / "out")

    with pytest.raises(TypeError):
        storage.save(make_output_filename("j", "wav"), object())  # type: ignore[arg-type]
    assert os.listdir(tmp_path / "out") == []


def test_symlink_out_of_the_directory_is_not_served(tmp_path: Path) -> None:
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"secret")
    out = tmp_path / "out"
    storage = LocalOutputStorage(out)
    (out / "job_x_00000000.wav").symlink_to(secret)
    assert storage.local_path("job_x_00000000.wav") is None
    assert list(storage.list_files()) == []


def test_partials_from_a_crash_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    storage = LocalOutputStorage(out)
    (out / ".partial-deadbeef-job_x_00000000.wav").write_bytes(b"half")
    keep = make_output_filename("job_y", "wav")
    storage.save(keep, b"whole")
    assert [f.filename for f in storage.list_files()] == [keep]
    assert storage.remove_partials(older_than_seconds=3600) == 0  # too recent
    assert storage.remove_partials() == 1
    assert sorted(os.listdir(out)) == [keep]
