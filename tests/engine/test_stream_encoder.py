"""Piece-by-piece encoders: bytes come out while audio goes in, and the joined stream decodes."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf

from f5vi.engine.audio import UnsupportedAudioFormatError
from f5vi.engine.stream_encoder import (
    BUFFERED_FORMATS,
    PROGRESSIVE_FORMATS,
    mpeg_frame_length,
    open_stream_encoder,
    streaming_wav_header,
)

SR = 24_000


def _pieces() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for seconds, freq in ((1.3, 220.0), (2.1, 330.0), (0.7, 440.0)):
        t = np.arange(int(SR * seconds)) / SR
        out.append(
            (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
        )
    return out


def _decode(data: bytes, fmt: str) -> np.ndarray:
    if fmt == "pcm":
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767
    wave, sr = sf.read(io.BytesIO(data), dtype="float32")
    assert sr == SR
    return wave


@pytest.mark.parametrize("fmt", sorted(PROGRESSIVE_FORMATS | BUFFERED_FORMATS))
def test_streamed_encoding_decodes_to_the_input(fmt: str) -> None:
    pieces = _pieces()
    whole = np.concatenate(pieces)
    encoder = open_stream_encoder(fmt, SR)
    outputs = [encoder.feed(p) for p in pieces]
    outputs.append(encoder.finish())
    if fmt in PROGRESSIVE_FORMATS:
        assert outputs[0], f"{fmt}: nothing after the first piece"
        assert encoder.progressive
    else:
        assert not any(outputs[:-1]) and outputs[-1] and not encoder.progressive
    wave = _decode(b"".join(outputs), fmt)
    delay = 0
    if fmt == "mp3":
        assert len(whole) <= len(wave) <= len(whole) + 2 * 1152 + 1105  # encoder delay + last frame
        delay = 1105  # LAME's fixed delay; no silent placeholder frame in front
    else:
        assert len(wave) == len(whole)
    aligned = wave[delay : delay + len(whole)]
    tolerance = {"pcm": 1e-4, "wav": 1e-4, "flac": 1e-4}.get(fmt, 0.03)  # lossy: signal RMS is 0.21
    error = float(np.sqrt(np.mean((aligned - whole[: len(aligned)]) ** 2)))
    assert error < tolerance, (fmt, error)


def test_wav_header_announces_an_unknown_length() -> None:
    header = streaming_wav_header(SR)
    assert len(header) == 44 and header[:4] == b"RIFF" and header[8:16] == b"WAVEfmt "
    assert struct.unpack_from("<I", header, 4)[0] == 0xFFFFFFFF
    assert struct.unpack_from("<I", header, 40)[0] == 0xFFFFFFFF
    assert struct.unpack_from("<HHII", header, 20) == (1, 1, SR, 2 * SR)
    assert open_stream_encoder("wav", SR).finish() == header  # an empty stream is still a WAV


def test_mp3_frame_length() -> None:
    assert mpeg_frame_length(bytes([0xFF, 0xF3, 0x94, 0xC4])) == 240  # MPEG-2 L3, 80 kbit/s, 24 kHz
    assert mpeg_frame_length(bytes([0xFF, 0xFB, 0x90, 0x64])) == 417  # MPEG-1 L3, 128 kbit/s, 44.1 kHz
    assert mpeg_frame_length(b"RIFF") is None


def test_unknown_format_is_refused() -> None:
    with pytest.raises(UnsupportedAudioFormatError):
        open_stream_encoder("aac", SR)


def test_feed_after_finish_is_an_error() -> None:
    encoder = open_stream_encoder("pcm", SR)
    encoder.finish()
    with pytest.raises(RuntimeError):
        encoder.feed(np.zeros(10, dtype=np.float32))
