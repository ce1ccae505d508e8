"""The gate as a non-inferiority test (issue 24): verdicts read off the interval against --max-drop, its level at
the tolerance, probe sets that a yes-bias cannot pass, and a gate that never crashes without a verdict or reports."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from harness.cli import main
from harness.regress.compare import (
    INCONCLUSIVE,
    MAY_EXCEED,
    NON_INFERIOR,
    REGRESSED,
    MetricComparison,
    RegressConfig,
    _apply_verdicts,
    compare,
    compare_sources,
)


def _row(delta, low, high, *, higher_is_better=True, p=0.001):
    """A gated accuracy-like row, natural units (display = x100)."""
    return MetricComparison(task="t", metric="m", n=100, higher_is_better=higher_is_better, baseline=0.8,
                            candidate=0.8 + delta, delta=delta, ci_low=low, ci_high=high, p_value=p, p_adjusted=p)


@pytest.mark.parametrize(("delta", "low", "high", "verdict", "text"), [
    # the case: -2.92 [-3.96, -1.95] with a tolerance of 2: the interval reaches inside it
    (-0.0292, -0.0396, -0.0195, MAY_EXCEED, "drop may exceed 2: REGRESSION"),
    (-0.0350, -0.0450, -0.0250, REGRESSED, "drop exceeds 2: REGRESSION"),  # all of it beyond the tolerance
    # the opposite case, once "no significant change": a small point drop whose interval reaches beyond 2
    (-0.0150, -0.0300, 0.0000, MAY_EXCEED, "drop may exceed 2: REGRESSION"),
    (-0.0050, -0.0150, 0.0050, NON_INFERIOR, "no drop beyond 2 (non-inferior)"),
    (-0.0100, -0.0200, 0.0000, NON_INFERIOR, "no drop beyond 2 (non-inferior)"),  # the worst bound at 2 is within
    (0.0300, 0.0100, 0.0500, "improved", "improved (no drop beyond 2)"),
    (-0.0100, math.nan, math.nan, INCONCLUSIVE, "inconclusive: no interval, counted as a REGRESSION"),
])
def test_each_verdict_by_hand(delta, low, high, verdict, text):
    row = _row(delta, low, high)
    _apply_verdicts([row], RegressConfig(max_drop=2, correction="none"))
    assert (row.verdict, row.verdict_text()) == (verdict, text)
    assert row.failed == (verdict in (MAY_EXCEED, REGRESSED, INCONCLUSIVE))


def test_a_lower_is_better_metric_drops_when_it_rises():
    row = _row(0.03, 0.01, 0.05, higher_is_better=False)  # a hallucination rate up 3 [1, 5] points
    _apply_verdicts([row], RegressConfig(max_drop=2))
    assert row.verdict == MAY_EXCEED and row.drop_bounds == pytest.approx((5.0, 1.0))


def test_the_gate_passes_a_candidate_whose_true_drop_is_the_tolerance_rarely(tmp_path, make_files, item_difficulty):
    """At the boundary of non-inferiority (true drop = --max-drop) the gate should pass at most ~2.5% of the time:
    the interval's worst bound is a one-sided 2.5% test. 20 trials of two independent sampled evaluations."""
    tolerance = 5.0
    worse = item_difficulty * (1 - tolerance / 100 / item_difficulty.mean())  # expected accuracy 5 points lower
    passed = 0
    for trial in range(20):
        base, cand = make_files(tmp_path / str(trial), item_difficulty, worse, 300 + trial, 400 + trial)
        comparison = compare_sources(base, cand, RegressConfig(metrics=["closed_accuracy"], n_boot=500,
                                                               max_drop=tolerance))
        passed += comparison.ok
    print(f"passed {passed} of 20 at a true drop equal to the tolerance")
    assert passed <= 2


def _closed_file(path, n, right):
    rows = [{"task": "vqa_rad", "id": str(i), "question": f"q{i}", "answer_type": "closed", "reference": "yes",
             "prediction": "yes" if right(i) else "no", "metadata": {}} for i in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_thousands_of_discordant_items_give_a_verdict_and_both_reports(tmp_path, capsys):
    """2,500 closed items the baseline got right and the candidate wrong: the old exact McNemar overflowed at
    1,024 discordant pairs, a traceback with exit 1 and no report."""
    base = _closed_file(tmp_path / "base.jsonl", 2500, lambda i: True)
    cand = _closed_file(tmp_path / "cand.jsonl", 2500, lambda i: False)
    md, junit = tmp_path / "r.md", tmp_path / "r.xml"
    code = main(["regress", "--baseline", base, "--candidate", cand, "--metrics", "closed_accuracy", "--n-boot", "200",
                 "--report-md", str(md), "--junit", str(junit), "--format", "json"])
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert code == 1 and report["verdict"] == "REGRESSION" and "Traceback" not in out.err
    assert report["rows"][0]["verdict"] == REGRESSED and report["rows"][0]["delta"] == -100.0
    assert "**REGRESSION in 1 of 1 metrics" in md.read_text()
    assert ET.parse(junit).getroot().find("testsuite").get("failures") == "1"


def test_an_error_inside_the_gate_exits_2_in_one_line_with_both_reports(tmp_path, capsys, monkeypatch):
    import importlib

    compare_module = importlib.import_module("harness.regress.compare")  # the package's name 'compare' is a function

    def broken(*args, **kwargs):
        raise OverflowError("int too large to convert to float")

    monkeypatch.setattr(compare_module, "paired_bootstrap", broken)
    base = _closed_file(tmp_path / "base.jsonl", 50, lambda i: True)
    md, junit = tmp_path / "r.md", tmp_path / "r.xml"
    code = main(["regress", "--baseline", base, "--candidate", base, "--report-md", str(md), "--junit", str(junit)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and err.startswith("error: the gate failed: OverflowError")
    assert "**ERROR**" in md.read_text()
    error = ET.parse(junit).getroot().find("testsuite").find("testcase").find("error")
    assert error.get("type") == "error" and "OverflowError" in error.get("message")


def test_a_yes_to_everything_candidate_on_synth_probe_is_a_regression():
    """The testbed's own numbers: a base at chance (accuracy ~50, yes-ratio ~53%) and a candidate answering "yes"
    to every probe. Its F1 rises (66.7, the old gate's "improved"); its yes-bias fails the gate."""
    from harness.tasks import get_task

    probes = get_task("synth_probe").load("test").select_columns(["id", "question", "answer", "source_id"]).to_list()
    rng = np.random.default_rng(0)

    def records(answers):
        return {("synth_probe", p["id"]): {"id": p["id"], "question": p["question"], "reference": p["answer"],
                                           "answer_type": "closed", "prediction": a,
                                           "metadata": {"source_id": p["source_id"]}} for p, a in zip(probes, answers)}

    chance = ["yes" if rng.random() < 0.53 else "no" for _ in probes]
    comparison = compare(records(chance), records(["yes"] * len(probes)), RegressConfig(max_drop=10, n_boot=1000))
    rows = {r.metric: r for r in comparison.rows}
    assert {r.metric for r in comparison.gated} == {"pope_accuracy", "pope_yes_bias"}
    assert rows["pope_f1"].delta > 0.1 and not rows["pope_f1"].gated  # what the old gate credited
    assert rows["pope_accuracy"].verdict == NON_INFERIOR  # 50 against 50: accuracy alone cannot tell
    assert rows["pope_yes_bias"].candidate == pytest.approx(0.5) and rows["pope_yes_bias"].verdict == REGRESSED
    assert not comparison.ok and comparison.verdict_line() == "REGRESSION in 1 of 2 metrics: synth_probe/pope_yes_bias"
