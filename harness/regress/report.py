"""Regression reports: a markdown summary (for a pull request comment) and JUnit XML (for CI test views).

JUnit: one ``<testcase>`` per task and metric (``classname`` = ``harness.regress.<task>``, ``name`` = the
metric), with a ``<failure>`` when the metric regressed, so CI systems show a gate failure like a test.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.io import atomic_write
from harness.regress.compare import REGRESSED, Comparison, MetricComparison

_MARK = {"regressed": "❌ regressed", "improved": "✅ improved", "no significant change": "➖ no significant change"}


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def summary_rows(comparison: Comparison) -> list[dict]:
    """Plain rows for printing (``harness.cli.common.emit``)."""
    return [{"task": r.task, "metric": r.metric, "n": r.n, "baseline": round(r.baseline, 4),
             "candidate": round(r.candidate, 4), "delta": round(r.delta, 4),
             "95% CI": f"[{r.ci_low:.4f}, {r.ci_high:.4f}]", "p": float(f"{r.p_value:.3g}"),
             "p_adj": float(f"{r.p_adjusted:.3g}"), "verdict": r.verdict} for r in comparison.rows]


def markdown(comparison: Comparison) -> str:
    cfg = comparison.config
    status = "FAILED: regression detected" if comparison.regressed else "passed: no regression"
    lines = [
        "# Factuality regression report",
        "",
        f"- baseline: `{comparison.baseline}`",
        f"- candidate: `{comparison.candidate}`",
        f"- alpha {cfg.alpha}, correction {cfg.correction}, max drop {cfg.max_drop}, "
        f"paired bootstrap {cfg.n_boot} resamples (seed {cfg.seed})",
        f"- **{status}** ({len(comparison.regressed)} of {len(comparison.rows)} metrics regressed)",
    ]
    lines += [f"- warning: {w}" for w in comparison.warnings]
    lines += [
        "",
        "| task | metric | n | baseline | candidate | delta | 95% CI of delta | p (test) | p adjusted | verdict |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in comparison.rows:
        test = "McNemar exact" if r.p_exact is not None else "paired bootstrap"
        lines.append(
            f"| {r.task} | {r.metric} | {r.n} | {_fmt(r.baseline)} | {_fmt(r.candidate)} | {r.delta:+.4f} | "
            f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}] | {r.p_value:.3g} ({test}) | {r.p_adjusted:.3g} | "
            f"{_MARK.get(r.verdict, r.verdict)} |"
        )
    return "\n".join(lines) + "\n"


def _failure_text(r: MetricComparison, comparison: Comparison) -> str:
    disc = f", discordant pairs baseline-only {r.discordant[0]} / candidate-only {r.discordant[1]}" if r.discordant else ""
    return (f"{r.task}/{r.metric} regressed: {r.baseline:.4f} -> {r.candidate:.4f} (worse by {r.worse_by:.4f} > "
            f"max drop {comparison.config.max_drop}), adjusted p = {r.p_adjusted:.3g} < alpha "
            f"{comparison.config.alpha}{disc}; n = {r.n}")


def junit_xml(comparison: Comparison) -> str:
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", name="harness.regress", tests=str(len(comparison.rows)),
                          failures=str(len(comparison.regressed)), errors="0", skipped="0")
    props = ET.SubElement(suite, "properties")
    for key, value in (("baseline", comparison.baseline), ("candidate", comparison.candidate),
                       ("alpha", comparison.config.alpha), ("max_drop", comparison.config.max_drop),
                       ("correction", comparison.config.correction)):
        ET.SubElement(props, "property", name=key, value=str(value))
    for r in comparison.rows:
        case = ET.SubElement(suite, "testcase", classname=f"harness.regress.{r.task}", name=r.metric, time="0")
        detail = (f"baseline {r.baseline:.4f}, candidate {r.candidate:.4f}, delta {r.delta:+.4f}, "
                  f"p {r.p_value:.3g}, adjusted {r.p_adjusted:.3g}: {r.verdict}")
        if r.verdict == REGRESSED:
            failure = ET.SubElement(case, "failure", message=_failure_text(r, comparison), type="regression")
            failure.text = detail
        else:
            ET.SubElement(case, "system-out").text = detail
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_reports(comparison: Comparison, *, markdown_path: str | Path | None = None,
                  junit_path: str | Path | None = None) -> None:
    for path, text in ((markdown_path, markdown), (junit_path, junit_xml)):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(path) as handle:
                handle.write(text(comparison))
