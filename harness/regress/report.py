"""Regression reports: table rows, a markdown summary (for a pull request comment) and JUnit XML (for CI).

Every number is in display units, as ``harness eval`` prints the metric (accuracy 73.5, not 0.735). JUnit:
one ``<testcase>`` per gated task and metric (``classname`` = ``harness.regress.<task>``, ``name`` = the
metric), with a ``<failure>`` when the metric fails (its drop exceeds or may exceed the tolerance), so CI
systems show a gate failure like a test. ``write_refusal`` writes both reports when nothing was decided (the
runs are not comparable, bad input, or an error inside the gate).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.core.io import atomic_write
from harness.regress.compare import (
    IMPROVED,
    INCONCLUSIVE,
    MAY_EXCEED,
    NON_INFERIOR,
    NOT_CREDITED,
    REGRESSED,
    Comparison,
    MetricComparison,
)

_MARK = {REGRESSED: "❌", MAY_EXCEED: "❌", INCONCLUSIVE: "❌", IMPROVED: "✅", NON_INFERIOR: "✅", NOT_CREDITED: "➖"}


def _num(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" if sign else f"{value:.2f}"


def summary_rows(comparison: Comparison) -> list[dict]:
    """Plain rows for the terminal table (display units; ``harness.cli.common.emit``)."""
    rows = []
    for r in comparison.rows:
        d = r.display()
        n = f"{d['n']} (claimed {d['claimed'][0]}->{d['claimed'][1]})" if "claimed" in d else d["n"]
        n = f"{d['n']} ({d['images']} images)" if "images" in d else n
        rows.append({"task": d["task"], "metric": d["metric"], "n": n, "baseline": _num(d["baseline"]),
                     "candidate": _num(d["candidate"]), "delta": _num(d["delta"], True),
                     "95% CI": f"[{_num(d['ci'][0], True)}, {_num(d['ci'][1], True)}]", "p_adj": d["p_adj"],
                     "mde": _num(d["mde"]),
                     "verdict": d["verdict_text"] + (f" ({d['note']})" if d.get("note") else "")})
    return rows


def max_drop_warnings(comparison: Comparison) -> list[str]:
    """One line per gated metric whose minimum detectable drop exceeds ``--max-drop``."""
    out = []
    for r in comparison.gated:
        mde = r.mde * r.scale
        if mde == mde and comparison.config.max_drop < mde:
            out.append(f"{r.task}/{r.metric}: --max-drop {comparison.config.max_drop:g} is below the minimum "
                       f"detectable drop {mde:.2f} at n = {r.n}: a candidate with no real drop passes with less "
                       "than 80% probability; raise --max-drop or evaluate more items")
    return out


def markdown(comparison: Comparison) -> str:
    cfg = comparison.config
    lines = [
        "# Factuality regression report",
        "",
        f"**{comparison.verdict_line()}**",
        "",
        f"- baseline: `{comparison.baseline}`",
        f"- candidate: `{comparison.candidate}`",
        f"- non-inferiority: a gated metric fails when its 95% interval reaches a drop beyond {cfg.max_drop:g} "
        f"points; paired bootstrap of each metric ({cfg.n_boot} resamples, seed {cfg.seed}); p of any change "
        f"adjusted by {cfg.correction} over the {len(comparison.gated)} gated metrics",
    ]
    lines += [f"- warning: {w}" for w in comparison.warnings + max_drop_warnings(comparison)]
    lines += [
        "",
        "Values in display units (as `harness eval` prints them); mde: the minimum detectable drop (80% power), "
        "the smallest tolerance an unchanged candidate passes 4 times in 5.",
        "",
        "| task | metric | n | baseline | candidate | delta | 95% CI of delta | p | p adjusted | mde | verdict |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in comparison.rows:
        d = r.display()
        note = f" ({d['note']})" if d.get("note") else ""
        claimed = f" claimed {d['claimed'][0]} → {d['claimed'][1]}" if "claimed" in d else ""
        claimed += f" ({d['images']} images)" if "images" in d else ""
        lines.append(
            f"| {r.task} | {r.metric} | {r.n}{claimed} | {_num(d['baseline'])} | {_num(d['candidate'])} | "
            f"{_num(d['delta'], True)} | [{_num(d['ci'][0], True)}, {_num(d['ci'][1], True)}] | {d['p']} | "
            f"{'-' if d['p_adj'] is None else d['p_adj']} | {_num(d['mde'])} | "
            f"{_MARK.get(r.verdict, '')} {d['verdict_text']}{note} |"
        )
    return "\n".join(lines) + "\n"


def _failure_text(r: MetricComparison, comparison: Comparison) -> str:
    d = r.display()
    return (f"{r.task}/{r.metric}: {d['verdict_text']}: {_num(d['baseline'])} -> {_num(d['candidate'])} (delta "
            f"{_num(d['delta'], True)}, 95% CI [{_num(d['ci'][0], True)}, {_num(d['ci'][1], True)}], tolerated drop "
            f"{comparison.config.max_drop:g}); n = {r.n}")


def junit_xml(comparison: Comparison) -> str:
    gated = comparison.gated
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", name="harness.regress", tests=str(len(gated)),
                          failures=str(len(comparison.regressed)), errors="0", skipped="0")
    props = ET.SubElement(suite, "properties")
    for key, value in (("baseline", comparison.baseline), ("candidate", comparison.candidate),
                       ("alpha", comparison.config.alpha), ("max_drop", comparison.config.max_drop),
                       ("correction", comparison.config.correction), ("verdict", comparison.verdict_line())):
        ET.SubElement(props, "property", name=key, value=str(value))
    for r in gated:
        d = r.display()
        case = ET.SubElement(suite, "testcase", classname=f"harness.regress.{r.task}", name=r.metric, time="0")
        detail = (f"baseline {_num(d['baseline'])}, candidate {_num(d['candidate'])}, delta {_num(d['delta'], True)} "
                  f"[{_num(d['ci'][0], True)}, {_num(d['ci'][1], True)}], p {d['p']}, adjusted {d['p_adj']}: "
                  f"{d['verdict_text']}")
        if r.failed:
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


def write_refusal(message: str, *, markdown_path: str | Path | None = None,
                  junit_path: str | Path | None = None, kind: str = "not-comparable") -> None:
    """Reports for a comparison that decided nothing (exit 2: refused, or an error inside the gate), so the CI
    report step still has something to show."""
    if markdown_path is not None:
        Path(markdown_path).parent.mkdir(parents=True, exist_ok=True)
        title = "REFUSED" if kind == "not-comparable" else "ERROR"
        with atomic_write(markdown_path) as handle:
            handle.write(f"# Factuality regression report\n\n**{title}**: {message}\n")
    if junit_path is not None:
        suites = ET.Element("testsuites")
        suite = ET.SubElement(suites, "testsuite", name="harness.regress", tests="1", failures="0", errors="1",
                              skipped="0")
        case = ET.SubElement(suite, "testcase", classname="harness.regress", name="comparable", time="0")
        ET.SubElement(case, "error", message=message, type=kind)
        ET.indent(suites)
        Path(junit_path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(junit_path) as handle:
            handle.write('<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n")
