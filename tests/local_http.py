"""HTTP peers the tests run on 127.0.0.1: a quiet threaded server and an S3 stand-in.

The webhook receivers of the RunPod tests and the fake S3 bucket share :class:`LocalHTTPServer`, so
each test file only writes the handler it needs.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not print every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


class LocalHTTPServer:
    """``handler`` served from a daemon thread on a free port until :meth:`close`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], path: str = "") -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LocalHTTPServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class FakeS3:
    """Path-style S3 subset: PutObject, multipart upload, GetObject (signatures are not checked)."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str | None]] = {}
        self.requests: list[tuple[str, str, list[str], dict[str, str]]] = []
        self._uploads: dict[str, dict[int, bytes]] = {}
        self._content_types: dict[str, str | None] = {}
        fake = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _read(self) -> tuple[str, dict[str, list[str]], bytes]:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                query = parse_qs(parts.query, keep_blank_values=True)
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.requests.append((self.command, parts.path, sorted(query), headers))
                return parts.path, query, body

            def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:
                path, query, body = self._read()
                if "uploadId" in query:
                    fake._uploads[query["uploadId"][0]][int(query["partNumber"][0])] = body
                else:
                    fake.objects[path] = (body, self.headers.get("Content-Type"))
                self._reply(200, headers={"ETag": f'"{hashlib.md5(body).hexdigest()}"'})

            def do_POST(self) -> None:
                path, query, _ = self._read()
                bucket, key = path.lstrip("/").split("/", 1)
                if "uploads" in query:
                    upload_id = uuid.uuid4().hex
                    fake._uploads[upload_id] = {}
                    fake._content_types[upload_id] = self.headers.get("Content-Type")
                    xml = (
                        f"<InitiateMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key>"
                        f"<UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>"
                    )
                else:
                    upload_id = query["uploadId"][0]
                    parts = fake._uploads.pop(upload_id)
                    data = b"".join(parts[n] for n in sorted(parts))
                    fake.objects[path] = (data, fake._content_types.pop(upload_id))
                    xml = (
                        f"<CompleteMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key>"
                        '<ETag>"done"</ETag></CompleteMultipartUploadResult>'
                    )
                self._reply(200, xml.encode(), {"Content-Type": "application/xml"})

            def do_GET(self) -> None:
                path, query, _ = self._read()
                if path in fake.objects and "X-Amz-Signature" in query:
                    data, content_type = fake.objects[path]
                    self._reply(200, data, {"Content-Type": content_type or "binary/octet-stream"})
                else:
                    self._reply(404, b"<Error><Code>NoSuchKey</Code></Error>")

        self._http = LocalHTTPServer(Handler)
        self.url = self._http.url

    def uploads_started(self) -> int:
        return sum(
            1
            for method, _, query, _ in self.requests
            if (method, query) in (("POST", ["uploads"]), ("PUT", []))
        )

    def close(self) -> None:
        self._http.close()
