"""Machine-readable output and the study's calibration, end to end on the tiny model (issue 24).

``--format json`` of ``harness study``, ``run``, ``eval`` and ``regress`` prints only JSON on standard output,
with numbers (display units), never display strings; library banners (DeepSpeed's "Setting accelerator to
CPU", printed when training imports it) go to stderr. The study's records carry an interval that excludes 0
exactly when p < 0.05. An A/A study (one method against itself, disjoint training seeds) shows the test's
calibration: its numbers are printed, and only a gross miscalibration fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

TINY = ["--model", "tiny", "--tasks", "synth_vqa", "--batch-size", "4", "--text-pairs", "injector", "--no-progress"]


def _harness(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "harness", *args], env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return done


def _strict_json(text: str):
    """What ``python -c "import json,sys; json.load(sys.stdin)"`` accepts, NaN excluded."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the JSON output"))


def _numbers(*values) -> bool:
    return all(v is None or isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


@pytest.mark.slow
def test_study_prints_json_only_and_an_aa_study_is_calibrated(tiny_model_dir, tmp_path):
    from harness.experiments.study import load_study
    from harness.experiments.study.analysis import aa_calibration

    store = str(tmp_path / "aa.sqlite")
    # a deliberately noisy training (lr 1e-2, 6 steps): the seeds move closed accuracy by several points
    done = _harness(["study", "--methods", "dpo", "--seeds", "6", "--study-id", "aa-pool", "--train-limit", "16",
                     "--eval-limit", "80", "--steps", "6", "--lr", "1e-2", "--lr-rule", "fixed", "--store", store,
                     "--format", "json",
                     *TINY])
    records = _strict_json(done.stdout)
    assert "Setting accelerator" not in done.stdout
    rows = [r for r in records if r["method"] == "dpo"]
    assert {r["metric"] for r in rows} == {"closed_accuracy", "open_recall"}
    for r in rows:
        assert r["n_seeds"] == 6 and r["units"] == "display" and r["test"]
        assert _numbers(r["mean"], r["sd"], r["delta_vs_base"], r["ci_low"], r["ci_high"], r["p_vs_base"], r["mde"])
        assert (r["ci_low"] > 0 or r["ci_high"] < 0) == (r["p_vs_base"] < 0.05)
    assert len({r["pair_seed"] for r in load_study("aa-pool").runs}) == 6  # each seed drew its own pairs

    result = aa_calibration(load_study("aa-pool"), store, "dpo", per_arm=2, pairs=20, n_boot=1000)
    closed = [t for t in result["tests"] if t["metric"] == "closed_accuracy"]
    print(f"A/A on the tiny model: {result['pairs']} pairs of 2 v 2 seeds from a pool of {result['runs']} runs, "
          f"{result['n_tests']} tests: {result['false_positives']} below 0.05 (item-level test alone: "
          f"{result['item_only_false_positives']}); KS p {result['ks_p']:.3f} (item-level {result['item_only_ks_p']:.3g});"
          f" closed-accuracy deltas {min(t['delta'] for t in closed):+.1f} to {max(t['delta'] for t in closed):+.1f}")
    assert result["pairs"] == 20 and result["n_tests"] == 40
    assert result["false_positives"] <= 6  # about 5% of 40 is 2; pairs from one pool of 6 runs are dependent
    assert len({round(t["p"], 6) for t in result["tests"]}) > 10  # the test can fail: p-values spread out


@pytest.mark.slow
def test_run_eval_and_regress_print_only_json_with_numbers(tiny_model_dir, tmp_path):
    store = str(tmp_path / "runs.sqlite")
    run = _strict_json(_harness(["run", "--method", "dpo", "--train-limit", "8", "--eval-limit", "20",
                                 "--max-steps", "1", "--store", store, "--format", "json", *TINY]).stdout)
    assert run["run_id"] and run["base_run_id"] and run["pairs"] > 0
    cells = [cell for r in run["runs"] for cell in r["metrics"].values()]
    assert cells and all(_numbers(c["value"], c["ci_low"], c["ci_high"]) for c in cells)
    assert 0 <= cells[0]["value"] <= 100  # display units

    out = tmp_path / "eval"
    evaluated = _strict_json(_harness(["eval", "--model", "tiny", "--tasks", "synth_vqa", "--limit", "20",
                                       "--output-dir", str(out), "--no-store", "--no-progress",
                                       "--format", "json"]).stdout)
    rows = evaluated["results"]
    assert {r["metric"] for r in rows} >= {"closed_accuracy", "open_recall"}
    assert all(_numbers(r["value"], r["ci_low"], r["ci_high"]) for r in rows)

    gate = _strict_json(_harness(["regress", "--baseline", str(out), "--candidate", str(out), "--n-boot", "200",
                                  "--format", "json"]).stdout)
    assert gate["verdict"] == "PASS" and all(_numbers(r["delta"], r["mde"], *r["ci"]) for r in gate["rows"])
