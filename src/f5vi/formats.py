"""The output audio formats: one table for the encoder, the job system and every front door.

Torch-free (only soundfile, and only to ask what this libsndfile build can write), so the job system
and the routes read it without importing the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

OutputFormat = Literal["wav", "flac", "mp3", "ogg", "opus", "pcm"]
"""Names a client may ask for (``pcm`` is headerless signed 16-bit little-endian mono)."""


@dataclass(frozen=True)
class AudioFormat:
    name: str
    extension: str
    media_type: str
    sf_format: str
    """libsndfile container (``soundfile`` ``format=``)."""
    sf_subtype: str

    def content_type(self, sample_rate: int) -> str:
        """The ``Content-Type`` of audio in this format; raw PCM says how to read its bytes."""
        if self.name == "pcm":
            return f"{self.media_type}; rate={sample_rate}; channels=1; encoding=s16le"
        return self.media_type


FORMATS: dict[str, AudioFormat] = {
    f.name: f
    for f in (
        AudioFormat("wav", "wav", "audio/wav", "WAV", "PCM_16"),
        AudioFormat("flac", "flac", "audio/flac", "FLAC", "PCM_16"),
        AudioFormat("ogg", "ogg", "audio/ogg", "OGG", "VORBIS"),
        AudioFormat("opus", "opus", "audio/ogg; codecs=opus", "OGG", "OPUS"),
        AudioFormat("mp3", "mp3", "audio/mpeg", "MP3", "MPEG_LAYER_III"),
        AudioFormat("pcm", "pcm", "audio/pcm", "RAW", "PCM_16"),
    )
}
assert set(FORMATS) == set(get_args(OutputFormat)), "the table and the OutputFormat names must agree"


def available_formats() -> list[str]:
    """The formats of :data:`FORMATS` this machine's libsndfile can write (an old build lacks mp3)."""
    import soundfile as sf

    containers = sf.available_formats()
    return [
        f.name
        for f in FORMATS.values()
        if f.sf_format in containers and f.sf_subtype in sf.available_subtypes(f.sf_format)
    ]
