"""The gate's one paired statistic, on synthetic predictions over real references (no model).

Each test reproduces one defect of issue 17 and checks the fix: (2) a corpus metric's delta came from the
corpus values while its interval and p came from per-report scores; (3) chexpert_f1_macro's per-sample score
was the micro one; (4) hallucination_rate rewarded silence; (5) the probe set measured one side.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.metrics import get_metric
from harness.metrics import items as paired_items
from harness.regress.compare import IMPROVED, NOT_CREDITED, REGRESSED, RegressConfig, compare
from harness.regress.probes import build_probes, finding_labels
from harness.stats.paired import paired_bootstrap
from harness.tasks import get_task

N_BOOT = 1000


def _records(task, refs, preds, answer_type="report", questions=None, extra=None):
    return {(task, str(i)): {"id": str(i), "prediction": p, "reference": r, "answer_type": answer_type,
                             "question": (questions or ["q"] * len(refs))[i], "metadata": (extra or [{}] * len(refs))[i]}
            for i, (p, r) in enumerate(zip(preds, refs))}


@pytest.fixture(scope="module")
def reports():
    """200 real synth_report references and a baseline that states each case's findings for 70% of them."""
    refs = list(get_task("synth_report").load("test", test_size=160)["answer"])
    rng = np.random.default_rng(0)
    base = [r if rng.random() < 0.7 else refs[(i + 1) % len(refs)] for i, r in enumerate(refs)]
    return refs, base


def test_a_corpus_metric_gets_the_interval_and_p_of_its_own_delta(reports):
    """Defect 2: for every corpus metric the delta lies inside its interval, and p < alpha iff 0 lies outside."""
    refs, base = reports
    rng = np.random.default_rng(1)
    # a candidate that drops findings from some reports and swaps others: per-report mean != corpus value
    cand = [("The heart size is normal. The lungs are clear." if rng.random() < 0.3 else b) for b in base]
    metrics = ["finding_f1", "finding_recall", "chexpert_f1_micro", "chexpert_f1_macro", "hallucination_rate"]
    comparison = compare(_records("synth_report", refs, base), _records("synth_report", refs, cand),
                         RegressConfig(metrics=metrics, n_boot=N_BOOT, correction="none"))
    rows = {r.metric: r for r in comparison.rows}
    for name, row in rows.items():
        metric = get_metric(name)
        assert row.baseline == pytest.approx(metric(base, refs, n_boot=0).value)  # the corpus values
        assert row.candidate == pytest.approx(metric(cand, refs, n_boot=0).value)
        assert row.ci_low <= row.delta <= row.ci_high, name
        assert (row.p_value < 0.05) == (row.ci_high < 0 or row.ci_low > 0), name
    # the per-report scores the old test ran on are a different quantity for these metrics
    per_report = np.mean(get_metric("finding_f1")(cand, refs, n_boot=0).per_sample) - np.mean(
        get_metric("finding_f1")(base, refs, n_boot=0).per_sample)
    assert abs(per_report - rows["finding_f1"].delta) > 0.01


def test_macro_and_micro_f1_are_two_statistics(reports):
    """Defect 3: chexpert_f1_macro resamples macro values; its interval and p are not micro's."""
    refs, base = reports
    cand = list(base)
    for i in range(0, len(cand), 4):
        cand[i] = cand[i].replace("effusion", "pneumothorax")  # hurts rare labels far more than the pool
    comparison = compare(_records("synth_report", refs, base), _records("synth_report", refs, cand),
                         RegressConfig(metrics=["chexpert_f1_micro", "chexpert_f1_macro"], n_boot=N_BOOT))
    micro, macro = comparison.rows
    assert macro.kind == "macro" and micro.kind == "corpus"
    assert (macro.delta, macro.ci_low, macro.ci_high) != pytest.approx((micro.delta, micro.ci_low, micro.ci_high))
    stats = paired_items.item_statistics("chexpert_f1_macro", cand, refs)
    assert stats.value() == pytest.approx(get_metric("chexpert_f1_macro")(cand, refs, n_boot=0).value)


def test_a_report_that_claims_nothing_fails_on_coverage(reports):
    """Defect 4: a silent model no longer 'improves' hallucination: coverage regresses, the rate is not credited."""
    refs, base = reports
    silent = ["The heart size is normal. The lungs are clear. There is no pleural effusion or pneumothorax."] * len(refs)
    comparison = compare(_records("synth_report", refs, base), _records("synth_report", refs, silent),
                         RegressConfig(n_boot=N_BOOT))
    rows = {r.metric: r for r in comparison.rows}
    assert set(rows) == {"finding_f1", "finding_recall", "hallucination_rate"}  # the small default gate
    assert rows["finding_recall"].verdict == REGRESSED and rows["finding_recall"].candidate == 0
    hallucination = rows["hallucination_rate"]
    assert hallucination.candidate == 0 and hallucination.verdict == NOT_CREDITED
    assert hallucination.support[0] > 0 and hallucination.support[1] == 0  # what the pooled rate rests on
    assert not comparison.ok and comparison.verdict_line().startswith("REGRESSION in 2 of 3 metrics")
    # asking for the hallucination rate alone still brings its coverage metric
    alone = compare(_records("synth_report", refs, base), _records("synth_report", refs, silent),
                    RegressConfig(metrics=["hallucination_rate"], n_boot=N_BOOT))
    assert [r.metric for r in alone.rows] == ["hallucination_rate", "finding_recall"] and not alone.ok
    # so does the per-report false-finding rate, which silence also drives to 0
    reports_only = compare(_records("synth_report", refs, base), _records("synth_report", refs, silent),
                           RegressConfig(metrics=["false_finding_rate"], n_boot=N_BOOT))
    rows = {r.metric: r for r in reports_only.rows}
    assert rows["false_finding_rate"].candidate == 0 and rows["false_finding_rate"].verdict == NOT_CREDITED
    assert rows["finding_recall"].verdict == REGRESSED


def test_fewer_hallucinations_at_the_same_coverage_are_credited(reports):
    refs, base = reports
    # the candidate drops the findings that the baseline got wrong (swapped reports) and keeps the right ones
    cand = [b if b == r else "The heart size is normal. The lungs are clear." for b, r in zip(base, refs)]
    comparison = compare(_records("synth_report", refs, base), _records("synth_report", refs, cand),
                         RegressConfig(n_boot=N_BOOT))
    rows = {r.metric: r for r in comparison.rows}
    assert rows["finding_recall"].delta >= 0
    assert rows["hallucination_rate"].verdict == IMPROVED and comparison.ok


@pytest.fixture(scope="module")
def probes():
    rows = [{"id": f"case{i}", "image": f"img{i}.png", "boxes": b} for i, b in enumerate([
        '[{"label": "nodule", "bbox": [0, 0, 1, 1]}, {"label": "mass", "bbox": [0, 0, 1, 1]}]',
        '[{"label": "effusion", "bbox": [0, 0, 1, 1]}]', '[]',
        '[{"label": "Liver", "bbox": [0, 0, 1, 1], "finding": false}, {"label": "nodule", "bbox": [0, 0, 1, 1]}]',
        '[{"label": "pneumothorax", "bbox": [0, 0, 1, 1]}, {"label": "mass", "bbox": [0, 0, 1, 1]}]',
    ] * 20)]
    return build_probes(rows, per_image=3, seed=0)


def test_probe_sets_are_balanced_in_every_setting(probes):
    """Defect 5: present and absent findings in equal numbers, under random, popular and adversarial negatives."""
    assert finding_labels('[{"label": "Liver", "finding": false}, {"label": "Nodule"}]') == ["nodule"]
    for setting in ("random", "popular", "adversarial"):
        answers = [p["answer"] for p in probes if p["probe_setting"] == setting]
        assert answers.count("yes") == answers.count("no") > 0
    shown = {f"case{i}": set(labels) for i, labels in enumerate([["nodule", "mass"], ["effusion"], [], ["nodule"],
                                                                   ["pneumothorax", "mass"]] * 20)}
    for p in probes:  # a "yes" probe asks about a finding the image has, a "no" probe about one it lacks
        assert (p["probe_label"] in shown[p["source_id"]]) == (p["answer"] == "yes")
    assert not any(p["source_id"] == "case2" for p in probes)  # an image without findings gives no probe
    case0 = {(p["probe_setting"], p["probe_label"]): p["answer"] for p in probes if p["source_id"] == "case0"}
    assert case0[("random", "nodule")] == "yes" and "liver" not in {lab for _, lab in case0}
    # adversarial negatives co-occur with the image's findings: mass co-occurs with pneumothorax
    case1_adv = [p["probe_label"] for p in probes if p["source_id"] == "case1" and p["probe_setting"] == "adversarial"
                 and p["answer"] == "no"]
    assert case1_adv == ["mass"]  # the most frequent label overall (popular) is also mass; the set is small
    assert build_probes([{"id": "x", "image": "i", "boxes": '[{"label": "a"}, {"label": "b"}]'},
                         {"id": "y", "image": "j", "boxes": '[{"label": "a"}]'}]) == build_probes(
        [{"id": "x", "image": "i", "boxes": '[{"label": "a"}, {"label": "b"}]'},
         {"id": "y", "image": "j", "boxes": '[{"label": "a"}]'}])


def test_a_model_saying_no_to_everything_fails_the_probe_set(probes):
    """Defect 5: 100% on the old one-sided probes; here a regression against any real baseline, on accuracy and on
    the yes-bias (issue 24: probe sets are gated on accuracy and the yes-bias, F1 is shown)."""
    refs = [p["answer"] for p in probes]
    meta = [{"source_id": p["source_id"]} for p in probes]
    rng = np.random.default_rng(0)
    base = [r if rng.random() < 0.85 else ("no" if r == "yes" else "yes") for r in refs]
    for degenerate in ("no", "yes"):
        comparison = compare(_records("synth_probe", refs, base, "closed", extra=meta),
                             _records("synth_probe", refs, [degenerate] * len(refs), "closed", extra=meta),
                             RegressConfig(n_boot=N_BOOT))
        rows = {r.metric: r for r in comparison.rows}
        assert rows["pope_accuracy"].gated and rows["pope_yes_bias"].gated
        assert not rows["pope_f1"].gated and not rows["pope_yes_ratio"].gated
        assert rows["pope_accuracy"].units == 80  # the images with a finding (4 of every 5), the resampled unit
        assert rows["pope_yes_ratio"].candidate == (1.0 if degenerate == "yes" else 0.0)
        assert rows["pope_yes_bias"].candidate == pytest.approx(0.5)
        assert rows["pope_accuracy"].verdict == REGRESSED and rows["pope_yes_bias"].verdict == REGRESSED, degenerate
        assert comparison.verdict_line().startswith("REGRESSION in 2 of 2 metrics")
    assert get_metric("pope_accuracy")(["no"] * len(refs), refs, n_boot=0).value == pytest.approx(0.5)


def test_probe_items_are_resampled_by_image(probes):
    """The three settings ask the same present findings again: the image is the resampled unit, not the probe."""
    refs = [p["answer"] for p in probes]
    rng = np.random.default_rng(3)
    base = [r if rng.random() < 0.8 else "no" for r in refs]
    cand = [r if rng.random() < 0.75 else "no" for r in refs]
    stats = [paired_items.item_statistics("pope_f1", x, refs) for x in (base, cand)]
    by_probe = paired_bootstrap(*stats, n_boot=N_BOOT)
    by_image = paired_bootstrap(*stats, n_boot=N_BOOT, clusters=[p["source_id"] for p in probes])
    assert by_image.delta == by_probe.delta
    assert by_image.se_delta > by_probe.se_delta


def test_identical_predictions_pass_with_p_one(reports):
    refs, base = reports
    comparison = compare(_records("synth_report", refs, base), _records("synth_report", refs, base),
                         RegressConfig(n_boot=N_BOOT))
    assert comparison.ok and all(r.p_value == 1.0 and r.delta == 0 for r in comparison.rows)
    assert comparison.verdict_line().startswith("PASS (3 metrics gated, none regressed")
