"""The arrows between the packages point one way: engine <- voices <- jobs <- api / runpod / cli.

Read from the source with ``ast`` (every import, also inside functions and ``TYPE_CHECKING`` blocks), so
a wrong arrow fails here before it shows up as an import cycle or a web framework inside the engine.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "f5vi"

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "engine": ("f5vi.voices", "f5vi.jobs", "f5vi.api", "f5vi.runpod", "f5vi.cli", "f5vi.metrics", "fastapi"),
    "voices": ("f5vi.jobs", "f5vi.api", "f5vi.runpod", "f5vi.cli", "f5vi.metrics", "fastapi"),
    "jobs": ("f5vi.api", "f5vi.runpod", "f5vi.cli", "f5vi.metrics", "fastapi"),
    "runpod": ("f5vi.cli", "f5vi.metrics"),
    "evaluation": ("f5vi.api", "f5vi.runpod", "f5vi.cli", "f5vi.metrics", "fastapi"),
}
"""Package -> module prefixes it may not import."""

ALLOWED_FROM_API = {
    "runpod": {"f5vi.api.app"},  # the app factory, nothing else of the HTTP layer
    "cli": {"f5vi.api.server", "f5vi.api.openapi"},  # `serve` and `export-openapi` run the HTTP layer
}
"""Front doors that may use a part of ``api/``: exactly these modules."""


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def package_files(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_points_up(package: str) -> None:
    wrong = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in package_files(package)
        for name in sorted(imports_of(path))
        if any(_matches(name, prefix) for prefix in FORBIDDEN[package])
    ]
    assert wrong == []


@pytest.mark.parametrize("package", sorted(ALLOWED_FROM_API))
def test_front_doors_take_only_their_part_of_the_http_layer(package: str) -> None:
    allowed = ALLOWED_FROM_API[package]
    wrong = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in package_files(package)
        for name in sorted(imports_of(path))
        if _matches(name, "f5vi.api")
        and not any(_matches(name, module) for module in allowed)
        and name.rsplit(".", 1)[0] not in allowed  # `from f5vi.api.app import create_app`
    ]
    assert wrong == []


def test_the_check_sees_a_wrong_arrow(tmp_path: Path) -> None:
    """The reader finds imports inside functions and TYPE_CHECKING blocks (the check cannot pass idly)."""
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from f5vi.metrics import Metrics\n"
        "def f():\n    import f5vi.api.schemas\n"
    )
    found = imports_of(module)
    assert "f5vi.metrics.Metrics" in found and "f5vi.api.schemas" in found
