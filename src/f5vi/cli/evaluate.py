"""``python -m f5vi eval``: measure one configuration, or two side by side, over a test list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from f5vi.config import Settings
from f5vi.evaluation.configs import EvalConfig, parse_compare
from f5vi.evaluation.report import is_demo, write_reports
from f5vi.evaluation.runner import Evaluator
from f5vi.evaluation.testlist import load_list


def evaluate(
    settings: Settings,
    out: Path,
    *,
    list_file: Path | None = None,
    limit: int | None = None,
    demo_fallback: bool = False,
    compare: list[str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the list (and the ``--compare`` configuration); write the reports; return a summary."""
    utterances = load_list(list_file, limit)
    configs = [EvalConfig("base")]
    if compare:
        configs.append(EvalConfig("compare", parse_compare(compare)))
    runs = Evaluator(settings, out, demo_fallback=demo_fallback, seed=seed).run(utterances, configs)
    paths = write_reports(out, runs, list_source=str(list_file or "shipped vi_test_list.tsv"))
    return {
        "demo": is_demo(runs),
        "reports": {k: str(v) for k, v in paths.items()},
        "configs": [{"name": r.config.label(), "engine": r.engine, "summary": r.summary()} for r in runs],
    }
