"""Results mirrored to an S3-compatible bucket (moto's server, tests/s3_server.py): HTTP API and RunPod."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from f5vi.api.app import create_app
from f5vi.engine.synthesizer import Synthesizer
from f5vi.storage import BucketMirroredStorage, LocalOutputStorage, StorageConfigError, output_storage
from s3_server import MotoS3
from server_helpers import local_settings, poll_until, write_voice

CREDENTIALS = {"s3_access_key_id": "test-access", "s3_secret_access_key": "test-secret"}


@pytest.fixture(scope="module")
def fake_s3() -> Iterator[MotoS3]:
    server = MotoS3()
    for bucket in ("results", "http-results"):
        server.create_bucket(bucket)
    yield server
    server.close()


def test_a_saved_file_is_uploaded_and_its_presigned_url_serves_it(tmp_path: Path, fake_s3: MotoS3) -> None:
    settings = local_settings(tmp_path, s3_endpoint_url=fake_s3.url, s3_bucket="results", **CREDENTIALS)
    storage = output_storage(settings)
    assert isinstance(storage, BucketMirroredStorage)
    stored = storage.save("job_a_0123abcd.flac", b"fLaC-bytes")
    assert stored.remote_url is not None and stored.remote_url.startswith(f"{fake_s3.url}/results/f5vi/")
    assert stored.remote_url_expires_at is not None and stored.remote_url_expires_at > time.time() + 6 * 86400
    assert httpx.get(stored.remote_url, timeout=10).content == b"fLaC-bytes"
    assert fake_s3.objects["/results/f5vi/job_a_0123abcd.flac"][1] == "audio/flac"
    assert storage.local_path("job_a_0123abcd.flac") is not None  # the local copy stays


def test_an_unreachable_bucket_leaves_the_local_copy_serving(tmp_path: Path) -> None:
    settings = local_settings(tmp_path, s3_endpoint_url="http://127.0.0.1:9", s3_bucket="b", **CREDENTIALS)
    stored = output_storage(settings).save("job_b_0123abcd.wav", b"RIFF")
    assert stored.remote_url is None and stored.size_bytes == 4


def test_half_a_bucket_configuration_is_refused(tmp_path: Path) -> None:
    assert isinstance(output_storage(local_settings(tmp_path)), LocalOutputStorage)
    with pytest.raises(StorageConfigError) as caught:
        output_storage(local_settings(tmp_path, s3_bucket="b"))
    message = caught.value.message
    assert "BUCKET_ENDPOINT_URL" in message and "BUCKET_SECRET_ACCESS_KEY" in message


def test_http_downloads_redirect_to_the_bucket(
    tmp_path: Path, fake_s3: MotoS3, demo_synth: Synthesizer
) -> None:
    settings = local_settings(
        tmp_path, s3_endpoint_url=fake_s3.url, s3_bucket="http-results", normalizer="none", **CREDENTIALS
    )
    write_voice(settings.voices_dir, "v1")
    with TestClient(create_app(settings, synthesizer=demo_synth)) as client:
        job = client.post("/tts", json={"text": "xin chào.", "ref_name": "v1", "nfe_step": 4}).json()
        done, _ = poll_until(
            lambda: client.get(f"/tts/progress/{job['job_id']}").json(),
            lambda v: v["state"] in ("succeeded", "failed"),
            timeout=120,
        )
        assert done["state"] == "succeeded", done
        response = client.get(done["result"]["download_url"], follow_redirects=False)
        assert response.status_code == 307
        remote = response.headers["location"]
        assert remote.startswith(f"{fake_s3.url}/http-results/f5vi/{done['filename']}?")
    audio, sample_rate = sf.read(io.BytesIO(httpx.get(remote, timeout=10).content))
    assert sample_rate == 24_000 and len(audio) > 0
