"""Regression verdicts on simulated models over the real VQA-RAD closed questions."""

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from harness.cli import main
from harness.core.errors import HarnessError
from harness.regress import REGRESSED, RegressConfig, compare_sources

ALPHA = 0.05
N_SEEDS = 20


def test_a_worse_candidate_is_flagged(tmp_path, make_files, closed_items, item_difficulty):
    worse = item_difficulty * 0.8  # about 13 points of accuracy lost in expectation
    base, cand = make_files(tmp_path, item_difficulty, worse, 0, 1)
    comparison = compare_sources(base, cand, RegressConfig(metrics=["closed_accuracy"], n_boot=2000))
    (row,) = comparison.rows
    assert row.verdict == REGRESSED and row.p_value < ALPHA and row.mcnemar["p"] < ALPHA  # McNemar agrees
    assert row.delta < 0 and row.ci_low <= row.delta <= row.ci_high < 0
    # a tolerance (in display points) larger than the drop lets it pass
    lenient = compare_sources(base, cand, RegressConfig(metrics=["closed_accuracy"], max_drop=50, n_boot=2000))
    assert lenient.ok


def test_same_model_under_20_seeds_raises_no_more_false_alarms_than_alpha_allows(tmp_path, make_files, closed_items,
                                                                                  item_difficulty):
    """Null experiment: two independent sampled evaluations of one model, 20 seed pairs. The p of any change is
    calibrated; with a tolerance above the minimum detectable drop the unchanged model passes the gate."""
    alarms, p_values, failed, mdes = 0, [], 0, []
    for seed in range(N_SEEDS):
        base, cand = make_files(tmp_path, item_difficulty, item_difficulty, 100 + seed, 200 + seed)
        comparison = compare_sources(base, cand, RegressConfig(metrics=["closed_accuracy"], n_boot=500, max_drop=15))
        (row,) = comparison.rows
        alarms += row.p_value < ALPHA
        p_values.append(row.p_value)
        failed += not comparison.ok
        mdes.append(row.mde * row.scale)
    print(f"false alarms: {alarms} of {N_SEEDS} at alpha {ALPHA}; p-values {np.round(p_values, 3).tolist()}; "
          f"gate failures at --max-drop 15: {failed} (mde {min(mdes):.1f}-{max(mdes):.1f})")
    assert alarms <= int(ALPHA * N_SEEDS)  # at most 1 of 20
    assert max(mdes) < 15 and failed <= N_SEEDS // 5  # 80% power to pass at a tolerance above the mde
    # the null p-values are spread out, not all 1 (the test would then be unable to fail)
    assert min(p_values) < 0.9


def test_cli_exit_status_and_reports(tmp_path, make_files, closed_items, item_difficulty, capsys):
    base, cand = make_files(tmp_path, item_difficulty, item_difficulty * 0.7, 0, 1)
    md, junit = tmp_path / "out" / "report.md", tmp_path / "out" / "report.xml"
    code = main(["regress", "--baseline", base, "--candidate", cand, "--metrics", "closed_accuracy",
                 "pope_accuracy", "--n-boot", "500", "--report-md", str(md), "--junit", str(junit)])
    assert code == 1
    out = capsys.readouterr()
    # a POPE score is gated with the yes-bias, which the candidate's extra flips also move
    assert out.out.strip().splitlines()[-1].startswith("REGRESSION in 3 of 3 metrics: vqa_rad/")
    assert "gated together with pope_yes_bias" in out.err
    assert "**REGRESSION in 3 of 3 metrics" in md.read_text()
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["closed_accuracy", "pope_accuracy", "pope_yes_bias"]
    assert suite.get("failures") == "3" and all(c.find("failure") is not None for c in cases)
    # the same file against itself passes
    assert main(["regress", "--baseline", base, "--candidate", base, "--n-boot", "200", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "PASS" and {r["verdict"] for r in report["rows"]} == {"non-inferior"}


def test_an_improvement_is_reported_and_passes(tmp_path, make_files, closed_items, item_difficulty):
    better = np.minimum(1.0, item_difficulty + 0.3)
    base, cand = make_files(tmp_path, item_difficulty, better, 0, 1)
    comparison = compare_sources(base, cand, RegressConfig(metrics=["closed_accuracy"], n_boot=500))
    assert comparison.ok and comparison.rows[0].verdict == "improved"


def test_mismatched_item_sets_are_refused_unless_partial_is_allowed(tmp_path, make_files, closed_items, item_difficulty):
    base, cand = make_files(tmp_path, item_difficulty, item_difficulty, 0, 0)
    lines = open(cand).read().splitlines()
    (tmp_path / "short.jsonl").write_text("\n".join(lines[:-10]) + "\n")
    with pytest.raises(HarnessError, match="misses 10 of"):
        compare_sources(base, tmp_path / "short.jsonl", RegressConfig(metrics=["closed_accuracy"], n_boot=200))
    comparison = compare_sources(base, tmp_path / "short.jsonl", RegressConfig(
        metrics=["closed_accuracy"], tasks=["vqa_rad"], n_boot=200, allow_partial=True))
    assert comparison.only_baseline == 10 and comparison.warnings
    assert comparison.rows[0].n == len(closed_items) - 10


def test_run_ids_are_read_through_the_results_store(tmp_path, closed_items, item_difficulty, sample_records):
    from harness.results.store import ResultRow, ResultsStore, RunRecord

    store = ResultsStore(tmp_path / "results.sqlite")
    ids = []
    for seed, p in ((0, item_difficulty), (1, item_difficulty * 0.7)):
        run_dir = tmp_path / f"run{seed}"
        (run_dir / "predictions").mkdir(parents=True)
        (run_dir / "predictions" / "vqa_rad.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in sample_records(closed_items, p, seed)))
        ids.append(store.add_run(RunRecord(model=f"m{seed}", predictions_dir=str(run_dir)),
                                 [ResultRow(task="vqa_rad", metric="closed_accuracy", value=0.5)]))
    comparison = compare_sources(ids[0], ids[1], RegressConfig(n_boot=300), store=store.path)
    assert comparison.baseline == ids[0]
    # the default gate of a VQA task: closed accuracy; open recall has no open items here and is skipped
    assert {r.metric for r in comparison.rows} == {"closed_accuracy"}
    assert not comparison.ok


def test_bad_inputs_are_one_line_errors(tmp_path, closed_items, item_difficulty, sample_records, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "1", "prediction": "yes"}) + "\n")
    with pytest.raises(HarnessError, match="bad.jsonl, record 1, field 'reference'"):
        compare_sources(bad, bad)
    assert main(["regress", "--baseline", "no-such-run", "--candidate", str(bad)]) == 2
    assert "no-such-run" in capsys.readouterr().err
    other = tmp_path / "mystery.jsonl"
    other.write_text("".join(json.dumps({**r, "task": "mystery"}) + "\n"
                             for r in sample_records(closed_items, item_difficulty, 0)))
    # an unregistered task still gets the default gate of its answer types
    assert [r.metric for r in compare_sources(other, other, RegressConfig(n_boot=200)).rows] == ["closed_accuracy"]
