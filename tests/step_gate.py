"""Count and hold the engine's ODE steps, so tests assert order and state instead of wall time.

:class:`StepGate` wraps ``shared_sampler.advance``, the one function every ODE step of every request
goes through (in-process engines only): it logs each step's items (their step counts tell requests
apart), can hold one step until released, and can note the step count at the first cancel.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from f5vi.engine import shared_sampler
from f5vi.engine.types import CancelToken

HOLD_LIMIT_SECONDS = 120.0
"""A held step is let go after this long at the latest (then ``released_by_timeout`` says so)."""


class StepGate:
    """Counts ODE steps; ``hold_at(n)`` holds step ``n`` (1-based) before it runs until ``release()``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.steps = 0
        self.log: list[tuple[int, ...]] = []
        """Per step, the ``steps`` (nfe) of each item in its batch."""
        self.steps_at_cancel: int | None = None
        self._hold_at: int | None = None
        self.holding = threading.Event()
        self._go = threading.Event()
        self.released_by_timeout = False
        self._lock = threading.Lock()
        original = shared_sampler.advance

        def advance(model: Any, items: list[Any]) -> None:
            with self._lock:
                self.steps += 1
                self.log.append(tuple(item.steps for item in items))
                hold = self.steps == self._hold_at
            if hold:
                self.holding.set()
                if not self._go.wait(HOLD_LIMIT_SECONDS):
                    self.released_by_timeout = True
            original(model, items)

        monkeypatch.setattr(shared_sampler, "advance", advance)

    def hold_at(self, step: int) -> None:
        self._hold_at = step
        self.holding.clear()
        self._go.clear()

    def release(self) -> None:
        self._go.set()

    def release_on_cancel(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A cancel (of any request) records the step count and lets a held step go: the step then
        finishes and the engine must stop the cancelled request before it starts another."""
        original = CancelToken.cancel

        def cancel(token: CancelToken) -> None:
            original(token)
            if self.steps_at_cancel is None:
                self.steps_at_cancel = self.steps
            self.release()

        monkeypatch.setattr(CancelToken, "cancel", cancel)

    def steps_after_cancel(self, nfe: int) -> int:
        """Steps that ran items of ``nfe`` steps after the step during which the cancel came."""
        assert self.steps_at_cancel is not None, "nothing was cancelled"
        return sum(1 for batch in self.log[self.steps_at_cancel :] if nfe in batch)
