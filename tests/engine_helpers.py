"""Builders shared by engine tests: a demo model on disk and real Vietnamese speech from espeak-ng."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from f5vi.config import Settings
from f5vi.engine.demo import make_demo_model

REFERENCE_TEXT = "xin chào, hôm nay trời đẹp và chúng tôi đi dạo trong công viên."


@dataclass(frozen=True)
class SpokenClip:
    path: Path
    transcript: str


def speak(directory: Path, text: str, *, voice: str = "vi", name: str = "ref") -> SpokenClip:
    """Vietnamese speech with a known transcript, as a 24 kHz mono WAV written next to its ``.txt``."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is required for engine tests (make test installs it)")
    directory.mkdir(parents=True, exist_ok=True)
    raw = directory / f"{name}.raw.wav"
    subprocess.run([espeak, "-v", voice, "-s", "150", "-w", str(raw), text], check=True, timeout=60)
    wave, sr = sf.read(raw, dtype="float32")
    raw.unlink()
    from f5vi.engine.audio import resample

    path = directory / f"{name}.wav"
    sf.write(path, resample(np.asarray(wave), sr, 24_000), 24_000, subtype="PCM_16")
    (directory / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    return SpokenClip(path=path, transcript=text)


def demo_settings(model_dir: Path, *, vocoder: str = "vocos", **overrides: object) -> Settings:
    """Settings that load the demo model in ``model_dir`` (created if missing) on the CPU.

    ``vocoder="bigvgan"``: the BigVGAN demo (bigvgan mel checkpoint + ``model_dir/bigvgan``).
    """
    if not (model_dir / "model_last.pt").is_file():
        make_demo_model(model_dir, vocoder=vocoder)
    values: dict[str, object] = {
        "model": str(model_dir),
        "vocoder": str(model_dir / vocoder),
        "device": "cpu",
        "dtype": "float32",
    }
    values.update(overrides)
    return Settings(**values)


class NetworkWaits:
    """Records every ``time.sleep`` and socket connection attempt (the latter refused).

    A hub load that "fails at once" or "uses the cache at once" makes neither: no retry back-off, no
    connection. Asserting that is what the code guarantees; a stopwatch would only measure the load.
    """

    def __init__(self, monkeypatch: Any) -> None:
        import socket
        import time

        self.sleeps: list[float] = []
        self.connects: list[object] = []

        def connect(sock: socket.socket, address: object) -> None:
            self.connects.append(address)
            raise OSError("network connections are refused in this test")

        monkeypatch.setattr(time, "sleep", self.sleeps.append)
        monkeypatch.setattr(socket.socket, "connect", connect)

    def assert_none(self) -> None:
        assert not self.sleeps and not self.connects, (self.sleeps, self.connects)
