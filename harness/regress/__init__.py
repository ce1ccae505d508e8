"""Factuality regression testing: paired per-sample comparison of a candidate against a baseline run.

See ``docs/regression.md``. ``compare_sources(baseline, candidate, RegressConfig(...))`` is the library
entry point; ``harness regress`` and the pytest plugin (``harness.regress.pytest_plugin``) wrap it.
"""

from __future__ import annotations

from harness.regress.compare import (
                                     IMPROVED,
                                     NO_CHANGE,
                                     REGRESSED,
                                     Comparison,
                                     MetricComparison,
                                     RegressConfig,
                                     compare,
                                     compare_sources,
)

__all__ = ["IMPROVED", "NO_CHANGE", "REGRESSED", "Comparison", "MetricComparison", "RegressConfig", "compare",
           "compare_sources"]
