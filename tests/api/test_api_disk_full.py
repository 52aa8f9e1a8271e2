"""A full data disk answers typed 507s, not 500s (issue 25, item 2), on a real full filesystem.

``F5VI_DATA_DIR`` (job database, uploaded voices) and the outputs live on a small tmpfs that the test
fills to the last byte. ``POST /voices`` and ``POST /tts`` answer ``507 insufficient_storage`` with
``Retry-After`` and nothing is half-written; once space is freed the same requests succeed. Mounting
a tmpfs needs root (CAP_SYS_ADMIN): elsewhere the test is skipped, and the database side is still
covered by ``tests/jobs/test_jobs_store_full.py`` (SQLite's ``max_page_count``).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from f5vi.api.app import create_app
from f5vi.engine.synthesizer import Synthesizer
from realtime_helpers import wait_job
from server_helpers import assert_error_shape, local_settings, wav_bytes, write_voice

TEXT = " ".join(["Hôm nay trời đẹp, chúng ta cùng nhau đi dạo trong công viên."] * 60)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write until the filesystem has no byte left; returns the file to delete to free it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 16, 1 << 12, 1 << 8, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def test_a_full_data_disk_is_507_for_uploads_and_submits_then_recovers(
    tmp_path: Path, small_disk: Path, demo_synth: Synthesizer
) -> None:
    settings = local_settings(
        tmp_path,
        device="cpu",
        normalizer="none",
        nfe_step=2,
        cleanup_interval_seconds=0,
        data_dir=small_disk / "data",
        output_dir=small_disk / "output",
    )
    write_voice(settings.voices_dir, "v1")
    upload = {"file": ("voice.wav", io.BytesIO(wav_bytes(3.0)), "audio/wav")}
    with TestClient(create_app(settings, synthesizer=demo_synth)) as client:
        filler = fill(small_disk)
        voice = client.post(
            "/voices", data={"voice_id": "mine", "transcript": "xin chào các bạn"}, files=upload
        )
        body = assert_error_shape(voice, 507, "insufficient_storage")
        assert voice.headers["Retry-After"] and "F5VI_UPLOADED_VOICES_DIR" in body["error"]["message"]
        assert not (settings.data_dir / "voices" / "mine.wav").exists()
        submitted = client.post("/tts", json={"text": TEXT, "ref_name": "v1"})
        body = assert_error_shape(submitted, 507, "insufficient_storage")
        assert submitted.headers["Retry-After"] and "F5VI_DATA_DIR" in body["error"]["message"]

        filler.unlink()
        upload["file"][1].seek(0)
        voice = client.post(
            "/voices", data={"voice_id": "mine", "transcript": "xin chào các bạn"}, files=upload
        )
        assert voice.status_code == 201, voice.text
        submitted = client.post("/tts", json={"text": "Xin chào.", "ref_name": "v1"})
        assert submitted.status_code == 202, submitted.text
        assert wait_job(client, submitted.json()["job_id"], timeout=120)["state"] == "succeeded"
