"""pytest plugin: a test fails when a model's factuality regresses against a stored baseline run.

Enable it with ``-p harness.regress.pytest_plugin`` (or through the ``pytest11`` entry point
``harness_regress`` once the package declares it). It gives:

- the ``factuality_gate`` fixture: ``factuality_gate(candidate, baseline=None, metrics=None, max_drop=0.0,
  alpha=0.05, tasks=None, correction="holm", allow_partial=False, allow_diff=())`` compares the two (run ids,
  run directories or predictions files, as ``harness regress`` takes) and calls ``pytest.fail`` with the
  failing metrics (a drop that exceeds or may exceed ``max_drop``, non-inferiority) or with the one-line
  reason nothing was decided; it returns the ``Comparison`` otherwise, so a test can assert more;
- options ``--factuality-baseline`` (the default baseline, e.g. the run id of the last release, so CI can
  change it without editing tests), ``--factuality-store`` (the results database) and
  ``--factuality-report DIR`` (a markdown and JUnit report per test).

Example::

    def test_checkpoint_keeps_its_factuality(factuality_gate):
        factuality_gate("runs/candidate", metrics=["closed_accuracy"], max_drop=2)  # display points
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness-regress", "factuality regression gate (harness)")
    group.addoption("--factuality-baseline", default=None,
                    help="default baseline for factuality_gate: run id, run directory or predictions JSONL")
    group.addoption("--factuality-store", default=None, help="results database holding the runs")
    group.addoption("--factuality-report", default=None, metavar="DIR",
                    help="write a markdown and JUnit XML regression report per test into DIR")


@pytest.fixture
def factuality_gate(request: pytest.FixtureRequest):
    """Call with the candidate (and optionally the baseline and options); fails the test on a regression."""
    config = request.config

    def gate(candidate: str | Path, baseline: str | Path | None = None, *, metrics: Sequence[str] | None = None,
             max_drop: float = 0.0, alpha: float = 0.05, tasks: Sequence[str] | None = None,
             correction: str = "holm", n_boot: int = 10000, seed: int = 0, allow_partial: bool = False,
             allow_diff: Sequence[str] = ()) -> Any:
        from harness.core.errors import HarnessError
        from harness.regress.compare import RegressConfig, compare_sources
        from harness.regress.report import markdown, write_reports

        baseline = baseline or config.getoption("--factuality-baseline")
        if baseline is None:
            pytest.fail("factuality_gate needs a baseline: pass baseline= or run pytest with --factuality-baseline",
                        pytrace=False)
        try:
            settings = RegressConfig(metrics=metrics, tasks=tasks, alpha=alpha, max_drop=max_drop,
                                     correction=correction, n_boot=n_boot, seed=seed,
                                     allow_partial=allow_partial, allow_diff=tuple(allow_diff))
            comparison = compare_sources(baseline, candidate, settings, store=config.getoption("--factuality-store"))
        except HarnessError as exc:
            pytest.fail(f"factuality gate could not compare: {exc}", pytrace=False)
        except Exception as exc:  # an error inside the gate fails the test in one line, not as a plugin error
            pytest.fail(f"factuality gate failed: {type(exc).__name__}: {exc}", pytrace=False)
        report_dir = config.getoption("--factuality-report")
        if report_dir:
            stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
            write_reports(comparison, markdown_path=Path(report_dir) / f"{stem}.md",
                          junit_path=Path(report_dir) / f"{stem}.xml")
        request.node.user_properties.append(("factuality_regressed", len(comparison.regressed)))
        if comparison.regressed:
            lines = [f"{r.task}/{r.metric}: {r.verdict_text()}: {r.baseline * r.scale:.2f} -> "
                     f"{r.candidate * r.scale:.2f}, 95% CI of the delta [{r.ci_low * r.scale:+.2f}, "
                     f"{r.ci_high * r.scale:+.2f}]" for r in comparison.regressed]
            pytest.fail("factuality regressed against the baseline:\n  " + "\n  ".join(lines)
                        + "\n\n" + markdown(comparison), pytrace=False)
        return comparison

    return gate
