"""The synthetic suite's exact finding metrics, by hand, and on the suite's own reports."""

from __future__ import annotations

import pytest

from harness.metrics import METRICS, compute_metrics
from harness.metrics.synth_findings import FINDING_METRICS, finding_counts
from harness.stats.intervals import wilson_interval
from harness.tasks.synth import SYNTH_REPORT, load_cases

NORMAL = "The heart size is normal. The lungs are clear. There is no pleural effusion or pneumothorax."
NODULE_RU = ("The heart size is normal. There is a small nodule in the right upper lung. "
             "There is no pleural effusion. There is no pneumothorax.")
TWO = ("The heart size is normal. There is a large left pleural effusion. There is medium consolidation in the "
       "right lower lung. There is no pneumothorax.")


def test_registered_and_listed_by_the_report_task():
    for name in FINDING_METRICS:
        assert METRICS.get(name).subset == "report"
        assert name in SYNTH_REPORT.metrics
    assert not METRICS.get("false_finding_rate").higher_is_better
    assert METRICS.get("finding_f1").higher_is_better


def test_counts_by_hand():
    predictions = [
        NORMAL,  # normal case, nothing claimed: all zero
        NORMAL,  # misses the nodule: FN 1
        NODULE_RU.replace("right", "left"),  # wrong side: FP 1, FN 1, lateral 0 of 1, false finding
        TWO,  # exact: TP 2
        NODULE_RU,  # invented nodule on a normal case: FP 1, false finding
    ]
    references = [NORMAL, NODULE_RU, NODULE_RU, TWO, NORMAL]
    counts = finding_counts(predictions, references).tolist()
    assert counts == [[0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 1, 1, 0, 1, 1], [2, 0, 0, 2, 2, 0],
                      [0, 1, 0, 0, 0, 1]]
    results = compute_metrics(FINDING_METRICS, predictions, references, n_boot=50)
    assert results["finding_precision"].value == pytest.approx(2 / 4)
    assert results["finding_recall"].value == pytest.approx(2 / 4)
    assert results["finding_f1"].value == pytest.approx(4 / 8)
    assert results["laterality_accuracy"].value == pytest.approx(2 / 3)
    assert results["false_finding_rate"].value == pytest.approx(2 / 5)
    assert all(r.n == 5 for r in results.values())
    # per-report scores for paired tests: 1.0 where there is nothing to find and nothing claimed
    assert results["finding_f1"].per_sample == [1.0, 0.0, 0.0, 1.0, 0.0]
    assert results["false_finding_rate"].per_sample == [0.0, 0.0, 1.0, 0.0, 1.0]


def test_a_wrong_size_is_not_a_match():
    said = NODULE_RU.replace("small", "large")
    result = compute_metrics(["finding_recall", "laterality_accuracy"], [said], [NODULE_RU], n_boot=10)
    assert result["finding_recall"].value == 0.0
    assert result["laterality_accuracy"].value == 1.0  # the side is right even if the size is not


def test_reference_reports_score_perfectly_and_a_normal_writer_has_no_recall():
    _, cases = load_cases("test", test_size=120)
    reports = [c.report for c in cases]
    assert sum(bool(c.lesions) for c in cases) > 20
    perfect = compute_metrics(FINDING_METRICS, reports, reports, n_boot=200)
    true_findings = int(finding_counts(reports, reports)[:, 0].sum())
    for name in ("finding_precision", "finding_recall", "finding_f1"):
        # every resample scores 1.0: the Wilson interval of k of k, not the point [1, 1] (nor no interval)
        assert perfect[name].value == 1.0 and perfect[name].ci_high == 1.0, name
        assert perfect[name].ci_low == pytest.approx(wilson_interval(true_findings, true_findings)[0]), name
    assert perfect["laterality_accuracy"].value == 1.0 and perfect["laterality_accuracy"].ci_low < 1.0
    assert perfect["false_finding_rate"].value == 0.0
    blind = compute_metrics(FINDING_METRICS, [NORMAL] * len(reports), reports, n_boot=200)
    assert blind["finding_recall"].value == 0.0 and blind["false_finding_rate"].value == 0.0
    # nothing stated anywhere: pooled precision and laterality are 0, a number the results store can hold
    assert blind["finding_precision"].value == 0.0 and blind["laterality_accuracy"].value == 0.0
    # shuffled reports invent findings and miss others; the interval is narrower than [0, 1]
    shuffled = compute_metrics(FINDING_METRICS, reports[1:] + reports[:1], reports, n_boot=200)
    f1 = shuffled["finding_f1"]
    if f1.value == 0.0:  # every resample scores 0: the Wilson interval of 0 of n rather than the point [0, 0]
        assert f1.ci_low == 0.0 and f1.ci_high > 0.0
    else:
        assert 0.0 <= f1.ci_low <= f1.value <= f1.ci_high < 0.5
    assert shuffled["false_finding_rate"].value > 0.1
