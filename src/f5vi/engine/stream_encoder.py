"""Encode audio piece by piece for streaming responses: bytes leave as soon as each piece is encoded.

Which formats truly stream (the first bytes are ready after the first piece):

- ``pcm``: raw signed 16-bit little-endian mono samples.
- ``wav``: a 44-byte header whose RIFF and data sizes say "unknown" (``0xFFFFFFFF``), then PCM.
  libsndfile/soundfile, ffmpeg and browsers read such a file to its real end.
- ``mp3``: ONE constant-bitrate LAME encoder for the whole stream (no gap or click between
  pieces). Frames are sent as LAME emits them. The LAME/Xing tag frame that libsndfile writes as a
  zero placeholder and fills in only when the file is closed (by seeking back) is dropped: a
  streamed file has no tag, so decoders use the constant bitrate and see the whole stream, and
  the audio starts after the usual encoder delay (~46 ms at 24 kHz).
- ``opus`` / ``ogg`` (Vorbis): Ogg pages are written strictly in order; nothing is rewritten.

``flac`` is buffered: libFLAC records the total length in STREAMINFO only when the file is closed,
and a FLAC stream with an unknown length does not open with ``soundfile.read``. Its bytes are
produced by :meth:`StreamEncoder.finish`, encoded exactly like a job's output.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import numpy as np
import soundfile as sf

from f5vi.engine.audio import (
    MP3_OPTIONS,
    OPUS_SAMPLE_RATES,
    UnsupportedAudioFormatError,
    encode_audio,
    writable_format,
)
from f5vi.formats import FORMATS

PROGRESSIVE_FORMATS: frozenset[str] = frozenset({"pcm", "wav", "mp3", "opus", "ogg"})
"""Formats whose bytes are sent while the rest is still being synthesised."""
BUFFERED_FORMATS: frozenset[str] = frozenset({"flac"})

UNKNOWN_SIZE = 0xFFFFFFFF


def to_pcm16(wave: np.ndarray) -> bytes:
    """Float audio -> signed 16-bit little-endian bytes (clipped, rounded like libsndfile)."""
    data = np.clip(np.asarray(wave, dtype=np.float32).reshape(-1), -1.0, 1.0)
    return np.round(data * 32767.0).astype("<i2").tobytes()


def streaming_wav_header(sample_rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """A PCM WAV header for a stream of unknown length (RIFF and data sizes 0xFFFFFFFF)."""
    block_align = channels * bits // 8
    return (
        b"RIFF"
        + struct.pack("<I", UNKNOWN_SIZE)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block_align, block_align, bits)
        + b"data"
        + struct.pack("<I", UNKNOWN_SIZE)
    )


class StreamEncoder:
    """``feed(piece) -> bytes`` for each float32 piece in order, then ``finish() -> bytes``.

    Not thread-safe; use one encoder per response (calls may come from different threads in turn).
    """

    progressive: bool = True

    def __init__(self, fmt: str, sample_rate: int) -> None:
        self.format = fmt
        self.sample_rate = sample_rate
        self.samples_in = 0
        self.bytes_out = 0
        self._finished = False

    def feed(self, piece: np.ndarray) -> bytes:
        if self._finished:
            raise RuntimeError("the encoder is finished")
        piece = np.asarray(piece, dtype=np.float32).reshape(-1)
        self.samples_in += piece.size
        out = self._feed(piece) if piece.size else b""
        self.bytes_out += len(out)
        return out

    def finish(self) -> bytes:
        if self._finished:
            return b""
        self._finished = True
        out = self._finish()
        self.bytes_out += len(out)
        return out

    def close(self) -> None:
        """Release resources without producing output (the stream was abandoned)."""
        self._finished = True

    def _feed(self, piece: np.ndarray) -> bytes:
        raise NotImplementedError

    def _finish(self) -> bytes:
        return b""


class _PcmEncoder(StreamEncoder):
    def _feed(self, piece: np.ndarray) -> bytes:
        return to_pcm16(piece)


class _WavEncoder(StreamEncoder):
    def __init__(self, fmt: str, sample_rate: int) -> None:
        super().__init__(fmt, sample_rate)
        self._header_sent = False

    def _header(self) -> bytes:
        if self._header_sent:
            return b""
        self._header_sent = True
        return streaming_wav_header(self.sample_rate)

    def _feed(self, piece: np.ndarray) -> bytes:
        return self._header() + to_pcm16(piece)

    def _finish(self) -> bytes:
        return self._header()  # an empty stream is still a (zero-length) WAV file


class _Tap(io.RawIOBase):
    """Seekable in-memory sink for libsndfile whose bytes can be taken away as they are appended.

    Only the part not yet taken is kept. Writes into the part already taken (libsndfile rewriting a
    header when it closes the file) are dropped: the client has those bytes already.
    """

    def __init__(self) -> None:
        super().__init__()
        self._base = 0  # absolute offset of self._pending[0]
        self._pending = bytearray()
        self._pos = 0
        self.rewrites = 0

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def _size(self) -> int:
        return self._base + len(self._pending)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self._size() + offset
        self._pos = max(self._pos, 0)
        return self._pos

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        start, end = self._pos, self._pos + len(chunk)
        self._pos = end
        if start < self._base:
            self.rewrites += 1
            chunk = chunk[self._base - start :]
            start = self._base
            if not chunk:
                return len(data)
        rel = start - self._base
        if rel + len(chunk) > len(self._pending):
            self._pending.extend(b"\0" * (rel + len(chunk) - len(self._pending)))
        self._pending[rel : rel + len(chunk)] = chunk
        return len(data)

    def read(self, size: int = -1) -> bytes:
        # libsndfile does not read back what it writes for the formats used here; be correct anyway
        # for the part still held, and return nothing for the part already taken.
        rel = self._pos - self._base
        if rel < 0:
            return b""
        end = len(self._pending) if size is None or size < 0 else rel + size
        out = bytes(self._pending[rel:end])
        self._pos += len(out)
        return out

    def take(self) -> bytes:
        out = bytes(self._pending)
        self._base += len(out)
        self._pending.clear()
        return out


_MPEG_BITRATES_KBPS = {
    # (MPEG-1) layer III, and (MPEG-2 / 2.5) layer III
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0),
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mpeg_frame_length(header: bytes) -> int | None:
    """Byte length of the MPEG audio layer III frame starting with ``header`` (None if not one)."""
    if len(header) < 4 or header[0] != 0xFF or (header[1] & 0xE0) != 0xE0:
        return None
    version = (header[1] >> 3) & 3  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    layer = (header[1] >> 1) & 3  # 1: layer III
    bitrate_index = header[2] >> 4
    rate_index = (header[2] >> 2) & 3
    padding = (header[2] >> 1) & 1
    if version == 1 or layer != 1 or rate_index == 3 or bitrate_index in (0, 15):
        return None
    kbps = _MPEG_BITRATES_KBPS[1 if version == 3 else 2][bitrate_index]
    rate = _MPEG_RATES[version][rate_index]
    per_frame = 144 if version == 3 else 72
    return per_frame * kbps * 1000 // rate + padding


class _SoundFileEncoder(StreamEncoder):
    """mp3 / ogg / opus through one libsndfile encoder writing into a :class:`_Tap`."""

    def __init__(self, fmt: str, sample_rate: int) -> None:
        super().__init__(fmt, sample_rate)
        spec = FORMATS[fmt]
        if fmt == "opus" and sample_rate not in OPUS_SAMPLE_RATES:
            raise UnsupportedAudioFormatError(
                f"opus streams need one of {OPUS_SAMPLE_RATES} Hz, not {sample_rate} Hz"
            )
        self._tap = _Tap()
        kwargs: dict[str, Any] = {}
        if fmt == "mp3":
            kwargs = dict(MP3_OPTIONS)  # the same bitrate as a whole file (encode_audio)
        self._file: sf.SoundFile | None = sf.SoundFile(
            self._tap,
            "w",
            samplerate=sample_rate,
            channels=1,
            format=spec.sf_format,
            subtype=spec.sf_subtype,
            **kwargs,
        )
        self._first = True

    def _out(self) -> bytes:
        data = self._tap.take()
        if self.format == "mp3" and self._first and data:
            self._first = False
            data = _drop_tag_placeholder(data)
        return data

    def _feed(self, piece: np.ndarray) -> bytes:
        assert self._file is not None
        self._file.write(np.clip(piece, -1.0, 1.0))
        return self._out()

    def _finish(self) -> bytes:
        if self._file is not None:
            self._file.close()
            self._file = None
        return self._out()

    def close(self) -> None:
        super().close()
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None


def _drop_tag_placeholder(data: bytes) -> bytes:
    """Remove a leading MPEG frame whose payload is all zeros (libsndfile's LAME-tag placeholder)."""
    length = mpeg_frame_length(data[:4])
    if length is None or len(data) < length:
        return data
    if any(data[4:length]):
        return data
    return data[length:]


class _BufferedEncoder(StreamEncoder):
    progressive = False

    def __init__(self, fmt: str, sample_rate: int) -> None:
        super().__init__(fmt, sample_rate)
        self._pieces: list[np.ndarray] = []

    def _feed(self, piece: np.ndarray) -> bytes:
        self._pieces.append(piece)
        return b""

    def _finish(self) -> bytes:
        wave = np.concatenate(self._pieces) if self._pieces else np.zeros(0, dtype=np.float32)
        self._pieces = []
        return encode_audio(wave, self.sample_rate, self.format)

    def close(self) -> None:
        super().close()
        self._pieces = []


def open_stream_encoder(fmt: str, sample_rate: int) -> StreamEncoder:
    """An encoder for ``fmt`` (see the module docstring for which formats truly stream)."""
    fmt = writable_format(fmt).name
    if fmt == "pcm":
        return _PcmEncoder(fmt, sample_rate)
    if fmt == "wav":
        return _WavEncoder(fmt, sample_rate)
    if fmt in BUFFERED_FORMATS:
        return _BufferedEncoder(fmt, sample_rate)
    return _SoundFileEncoder(fmt, sample_rate)
