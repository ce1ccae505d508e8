"""Scoring several metrics at once, and the paths of the local ``evaluate`` modules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from harness.core.errors import HarnessError
from harness.metrics.base import MetricResult
from harness.metrics.registry import METRICS

EVALUATE_DIR = Path(__file__).resolve().parent / "evaluate_modules"


def compute_metrics(
    names: Iterable[str], predictions: Sequence[object], references: Sequence[object], *, seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, MetricResult]:
    """Results for ``names`` in the order given; report and clinical metrics are scored in shared passes."""
    from harness.metrics.clinical import CLINICAL_METRICS, score_clinical
    from harness.metrics.report import REPORT_METRICS, score_reports

    names = list(dict.fromkeys(names))
    for name in names:
        METRICS.get(name)  # unknown names fail early, with a suggestion
    if len(predictions) != len(references):
        raise HarnessError(f"{len(predictions)} predictions but {len(references)} references")
    results: dict[str, MetricResult] = {}
    # Shared passes only for the built-in entries (a plugin may not reuse a built-in's name anyway).
    report = [n for n in names if n in REPORT_METRICS]
    if report:
        results.update(score_reports(report, predictions, references, seed=seed, n_boot=n_boot))
    clinical = [n for n in names if n in CLINICAL_METRICS]
    if clinical:
        results.update(score_clinical(clinical, predictions, references, seed=seed, n_boot=n_boot))
    for name in names:
        if name not in results:
            results[name] = METRICS.get(name)(predictions, references, seed=seed, n_boot=n_boot)
    return {name: results[name] for name in names}


def evaluate_module_path(name: str) -> Path:
    METRICS.get(name)
    path = EVALUATE_DIR / name
    if not (path / f"{name}.py").is_file():
        raise HarnessError(f"metric '{name}' has no local evaluate module at {path}")
    return path
