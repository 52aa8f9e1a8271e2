"""Typed engine errors; each has a stable ``code`` and the HTTP status a front door answers with."""

from __future__ import annotations

from f5vi.errors import F5viError


class EngineError(F5viError, code="engine_error"):
    """Base class of every error the engine raises on purpose."""


class InvalidTextError(EngineError, ValueError, code="invalid_text", http_status=422):
    """Text is empty, too long, or has nothing the model's vocabulary can say.

    Also a ``ValueError`` so request schemas can use the engine's own check as a field validator
    (pydantic reports a ``ValueError`` from a validator as a validation error of that field).
    """


class InvalidReferenceError(EngineError, code="invalid_reference", http_status=422):
    """Reference audio is unreadable, too short, silent, or its transcript is unusable."""


class InvalidParameterError(EngineError, code="invalid_parameter", http_status=422):
    """A synthesis parameter (speed, nfe_step, ...) is outside its allowed range."""


class ModelLoadError(EngineError, code="model_load_failed", http_status=503):
    """A checkpoint, vocab or vocoder could not be found, downloaded or loaded."""


class SynthesisCancelled(EngineError, code="cancelled", http_status=409):  # noqa: N818 - an outcome, not a fault
    """The caller cancelled the synthesis; raised between ODE steps."""
