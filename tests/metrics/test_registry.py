"""Every metric the tasks name is registered with its direction and subset, and loads as `evaluate`."""

from __future__ import annotations

import numpy as np
import pytest

from harness.core.errors import HarnessError, UnknownNameError
from harness.metrics import METRICS, compute_metrics, evaluate_module_path, get_metric

EXPECTED = {
    "closed_accuracy": "closed", "closed_accuracy_llava_med": "closed", "open_recall": "open",
    "open_exact_match": "open", "open_f1": "open", "closed_accuracy_first_word": "closed", "open_precision": "open",
    "open_recall_llava_med": "open", "open_precision_llava_med": "open", "open_f1_llava_med": "open", "bleu_1": "report", "bleu_2": "report",
    "bleu_3": "report", "bleu_4": "report", "bleu": "report", "rouge_l": "report", "meteor": "report",
    "cider": "report", "chexpert_f1_micro": "report", "chexpert_f1_macro": "report",
    "chexpert_precision_micro": "report", "chexpert_recall_micro": "report", "hallucination_rate": "report",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_registered_with_subset_direction_and_evaluate_module(name):
    metric = get_metric(name)
    assert metric.name == name and metric.subset == EXPECTED[name]
    assert metric.higher_is_better is (name != "hallucination_rate")
    assert (evaluate_module_path(name) / f"{name}.py").is_file()


def test_unknown_metric_suggests_a_name():
    with pytest.raises(UnknownNameError, match="did you mean 'rouge_l'"):
        compute_metrics(["rouge_k"], ["a"], ["a"])
    with pytest.raises(HarnessError):
        evaluate_module_path("rouge_k")


def test_all_expected_names_present():
    assert set(EXPECTED) <= set(METRICS.names())


@pytest.fixture
def evaluate_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    evaluate = pytest.importorskip("evaluate")
    return evaluate


@pytest.mark.parametrize(
    ("name", "preds", "refs"),
    [
        ("closed_accuracy_llava_med", ["there is a nodule", "yes"], ["no", "no"]),
        ("open_f1", ["right lung", "liver"], ["left lung", "liver"]),
        ("hallucination_rate", ["Cardiomegaly. Small effusion."], ["Cardiomegaly."]),
    ],
)
def test_local_evaluate_module_gives_the_same_result(evaluate_cache, name, preds, refs):
    module = evaluate_cache.load(str(evaluate_module_path(name)))
    out = module.compute(predictions=preds, references=refs, seed=1, n_boot=50)
    direct = get_metric(name)(preds, refs, seed=1, n_boot=50)
    # NaN marks an item outside the legacy closed rule's denominator: compare with NaN equal to NaN.
    assert np.array_equal([out[name], out["ci_low"], out["ci_high"]], [direct.value, direct.ci_low, direct.ci_high],
                          equal_nan=True)
    assert np.array_equal(out["per_sample"], direct.per_sample, equal_nan=True)
