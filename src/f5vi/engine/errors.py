"""Typed engine errors. Each carries a stable ``code`` that the API maps to a 4xx/5xx response."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""

    code: str = "engine_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidTextError(EngineError):
    """Text is empty, too long, or has nothing the model's vocabulary can say."""

    code = "invalid_text"


class InvalidReferenceError(EngineError):
    """Reference audio is unreadable, too short, silent, or its transcript is unusable."""

    code = "invalid_reference"


class InvalidParameterError(EngineError):
    """A synthesis parameter (speed, nfe_step, ...) is outside its allowed range."""

    code = "invalid_parameter"


class ModelLoadError(EngineError):
    """A checkpoint, vocab or vocoder could not be found, downloaded or loaded."""

    code = "model_load_failed"


class SynthesisCancelled(EngineError):  # noqa: N818 - a cancellation is an outcome, not a fault
    """The caller cancelled the synthesis; raised between ODE steps."""

    code = "cancelled"
