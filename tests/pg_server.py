"""A real PostgreSQL server for the tests, from Debian's ``postgresql`` package (``make sysdeps``).

``initdb`` runs in a temporary directory and ``postgres`` listens on a free local port; each test
gets its own fresh database (:meth:`PostgresServer.new_database`). PostgreSQL refuses to run as
root, so when the tests run as root (CI) the cluster belongs to the ``postgres`` system user the
package creates and both programs run through ``runuser``. Every wait here is bounded.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_USER = "postgres"


def postgres_bin() -> Path | None:
    """The newest installed server's bin directory, or None (``make sysdeps`` installs it)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self, bin_dir: Path, root: Path | None = None, *, fsync: bool = False) -> None:
        self.bin_dir = bin_dir
        self.fsync = fsync
        """Off for the tests (speed; a crash of the test machine loses nothing we need); on for the bench."""
        self.root = Path(root or tempfile.mkdtemp(prefix="f5vi-pg-"))
        self.port = _free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._names = itertools.count()
        self._as_root = os.geteuid() == 0

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", PG_USER, "--", *args] if self._as_root else list(args)

    @property
    def user(self) -> str:
        return PG_USER if self._as_root else pwd.getpwuid(os.geteuid()).pw_name

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        data = self.root / "data"
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            shutil.chown(self.root, PG_USER)
            os.chmod(self.root, 0o755)
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", self.user, "-E", "UTF8"
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        log = open(self.root / "postgres.log", "wb")  # noqa: SIM115 - closed with the process
        self._proc = subprocess.Popen(
            self._cmd(
                str(self.bin_dir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"fsync={'on' if self.fsync else 'off'}",
                "-c",
                "max_connections=200",
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError("postgres exited: " + (self.root / "postgres.log").read_text()[-2000:])
            ready = subprocess.run(
                [str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                timeout=10,
            )
            if ready.returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError("postgres did not become ready in 60 s")

    def new_database(self) -> str:
        """A fresh empty database; its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()  # smart shutdown would wait for clients: SIGTERM is "smart"
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._proc = None
        shutil.rmtree(self.root, ignore_errors=True)
