"""f5vi: a production Vietnamese text-to-speech service built on F5-TTS flow matching."""

__version__ = "0.1.0"
