"""Factuality regression testing: paired comparison of a candidate against a baseline run.

See ``docs/regression.md``. ``compare_sources(baseline, candidate, RegressConfig(...))`` is the library
entry point; ``harness regress`` and the pytest plugin (``harness.regress.pytest_plugin``) wrap it. The
statistics (per-item statistics of every metric, the paired bootstrap, McNemar, Holm) live in
``harness.stats``; ``harness.regress.probes`` and ``harness.metrics.pope`` hold the POPE-style probe sets
and their scores.
"""

from __future__ import annotations

from harness.regress.compare import (
    DEFAULT_GATE,
    FAILING,
    IMPROVED,
    INCONCLUSIVE,
    MAY_EXCEED,
    NON_INFERIOR,
    NOT_CREDITED,
    REGRESSED,
    Comparison,
    MetricComparison,
    RegressConfig,
    check_comparable,
    compare,
    compare_sources,
)

__all__ = ["DEFAULT_GATE", "FAILING", "IMPROVED", "INCONCLUSIVE", "MAY_EXCEED", "NON_INFERIOR", "NOT_CREDITED",
           "REGRESSED", "Comparison", "MetricComparison", "RegressConfig", "check_comparable", "compare",
           "compare_sources"]
