"""What ``--compare KEY=VALUE`` may change, and the settings each configuration runs with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from f5vi.config import Settings
from f5vi.engine.errors import InvalidParameterError

_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"0", "false", "off", "no"}


def _bool(value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError("expected true/false, on/off or 1/0")


def _nfe(value: str) -> int:
    steps = int(value)
    if not 1 <= steps <= 128:
        raise ValueError("between 1 and 128")
    return steps


COMPARE_KEYS: dict[str, tuple[str, Any]] = {
    "model": ("model", str),
    "checkpoint": ("model", str),
    "vocoder": ("vocoder", str),
    "nfe_step": ("nfe_step", _nfe),
    "nfe": ("nfe_step", _nfe),
    "use_epss": ("use_epss", _bool),
    "epss": ("use_epss", _bool),
    "dtype": ("dtype", str),
    "verify": ("verify", _bool),
    "verify_max_cer": ("verify_max_cer", float),
    "verify_max_attempts": ("verify_max_attempts", int),
    "speed": ("speed", float),
}
"""``--compare`` keys (and aliases) -> the setting they change, and how their value is read."""

ENGINE_KEYS = ("model", "vocoder", "dtype")
"""Settings that need another engine (another model in memory); the others are request parameters."""


@dataclass(frozen=True)
class EvalConfig:
    name: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        if not self.overrides:
            return self.name
        return f"{self.name} (" + ", ".join(f"{k}={v}" for k, v in self.overrides.items()) + ")"

    def settings(self, base: Settings) -> Settings:
        return base.model_copy(update=self.overrides)


def parse_compare(pairs: list[str]) -> dict[str, Any]:
    """``["nfe_step=16", "verify=on"]`` -> ``{"nfe_step": 16, "verify": True}``; unknown keys refused."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not sep or key not in COMPARE_KEYS:
            raise InvalidParameterError(
                f"--compare {pair!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(COMPARE_KEYS))}"
            )
        name, convert = COMPARE_KEYS[key]
        try:
            overrides[name] = convert(value.strip())
        except ValueError as exc:
            raise InvalidParameterError(f"--compare {pair!r}: {exc}") from exc
    return overrides
