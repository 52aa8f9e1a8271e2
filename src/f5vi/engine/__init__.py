"""Inference-only F5-TTS / E2-TTS engine. Everything that touches torch lives here; no web imports."""
