"""A real S3-compatible server for the tests: moto's server mode (``moto[server]``) in a subprocess.

Presigned URLs, SigV4 signatures, multipart uploads and content types are checked by moto's
implementation, not by ours. Buckets are created with versioning on, so a test can count how many
times a key was uploaded (:meth:`MotoS3.uploads_started`).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ACCESS_KEY = "test-access"
SECRET_KEY = "test-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoS3:
    def __init__(self, log_dir: Path | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = open(log_dir / "moto.log", "wb") if log_dir else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if log is not subprocess.DEVNULL:
            log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {self._proc.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/moto-api/", timeout=2).status_code < 500:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("moto server did not start in 60 s")
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.url,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
                region_name="us-east-1",
            )
        return self._client

    def create_bucket(self, name: str) -> str:
        s3 = self.client()
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=name)
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    @property
    def objects(self) -> dict[str, tuple[bytes, str | None]]:
        """Every stored object as ``/bucket/key`` -> (bytes, content type)."""
        s3 = self.client()
        found: dict[str, tuple[bytes, str | None]] = {}
        for bucket in s3.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
                got = s3.get_object(Bucket=name, Key=item["Key"])
                found[f"/{name}/{item['Key']}"] = (got["Body"].read(), got.get("ContentType"))
        return found

    def uploads_started(self) -> int:
        """Object versions written, over all buckets (each upload of a key adds one)."""
        s3 = self.client()
        total = 0
        for bucket in s3.list_buckets().get("Buckets", []):
            total += len(s3.list_object_versions(Bucket=bucket["Name"]).get("Versions", []))
        return total

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
