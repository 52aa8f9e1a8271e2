"""Typed engine errors; each has a stable ``code`` and the HTTP status a front door answers with."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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


MEMORY_RETRY_AFTER_SECONDS = 10
"""Retry-After of a 503 ``insufficient_memory``: memory held by other requests is freed by then."""


class InsufficientMemoryError(EngineError, code="insufficient_memory", http_status=503):
    """The server ran out of memory preparing audio (HTTP 503: retry later, or send a smaller file).

    The work itself is bounded (see :mod:`f5vi.engine.resample`), so this means the machine is short
    of memory right now, not that the input was malicious.
    """

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(MEMORY_RETRY_AFTER_SECONDS)}


@contextlib.contextmanager
def memory_guard(what: str) -> Iterator[None]:
    """Turn an allocation failure inside the block into :class:`InsufficientMemoryError`.

    numpy raises ``MemoryError``; torch's CPU allocator raises a ``RuntimeError`` saying "can't allocate
    memory", and CUDA ``torch.OutOfMemoryError`` (a ``RuntimeError`` too). Other errors pass through.
    """
    try:
        yield
    except MemoryError as exc:
        raise InsufficientMemoryError(f"not enough memory to {what}; try again later") from exc
    except RuntimeError as exc:
        text = str(exc)
        if type(exc).__name__ == "OutOfMemoryError" or "can't allocate memory" in text:
            raise InsufficientMemoryError(f"not enough memory to {what}; try again later") from exc
        raise


class ModelLoadError(EngineError, code="model_load_failed", http_status=503):
    """A checkpoint, vocab or vocoder could not be found, downloaded or loaded."""


class SynthesisCancelled(EngineError, code="cancelled", http_status=409):  # noqa: N818 - an outcome, not a fault
    """The caller cancelled the synthesis; raised between ODE steps."""
