"""Factuality regression testing: paired comparison of a candidate against a baseline run.

See ``docs/regression.md``. ``compare_sources(baseline, candidate, RegressConfig(...))`` is the library
entry point; ``harness regress`` and the pytest plugin (``harness.regress.pytest_plugin``) wrap it.
``harness.regress.paired`` holds the one paired statistic per metric, ``harness.regress.probes`` and
``harness.regress.pope`` the POPE-style probe sets and their scores.
"""

from __future__ import annotations

from harness.regress.compare import (
    DEFAULT_GATE,
    IMPROVED,
    NO_CHANGE,
    NOT_CREDITED,
    REGRESSED,
    Comparison,
    MetricComparison,
    RegressConfig,
    check_comparable,
    compare,
    compare_sources,
)

__all__ = ["DEFAULT_GATE", "IMPROVED", "NOT_CREDITED", "NO_CHANGE", "REGRESSED", "Comparison", "MetricComparison",
           "RegressConfig", "check_comparable", "compare", "compare_sources"]
