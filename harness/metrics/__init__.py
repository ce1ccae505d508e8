"""Metric registry. Entries are lazy ``module:attr`` strings; see ``harness.metrics.base`` for the contract."""

from __future__ import annotations

from harness.metrics.base import Metric, MetricResult
from harness.registry import Registry

METRICS: Registry[Metric] = Registry("metric", entry_point_group="harness.metrics")


def get_metric(name: str) -> Metric:
    return METRICS.get(name)


# Med-VQA (harness.metrics.vqa)
METRICS.register_lazy("closed_accuracy", "harness.metrics.vqa:closed_accuracy")
METRICS.register_lazy("closed_accuracy_llava_med", "harness.metrics.vqa:closed_accuracy_llava_med")
METRICS.register_lazy("open_recall", "harness.metrics.vqa:open_recall")
METRICS.register_lazy("open_exact_match", "harness.metrics.vqa:open_exact_match")
METRICS.register_lazy("open_f1", "harness.metrics.vqa:open_f1")
# Report generation, pycocoevalcap-exact (harness.metrics.report)
METRICS.register_lazy("bleu_1", "harness.metrics.report:bleu_1")
METRICS.register_lazy("bleu_2", "harness.metrics.report:bleu_2")
METRICS.register_lazy("bleu_3", "harness.metrics.report:bleu_3")
METRICS.register_lazy("bleu_4", "harness.metrics.report:bleu_4")
METRICS.register_lazy("bleu", "harness.metrics.report:bleu")
METRICS.register_lazy("rouge_l", "harness.metrics.report:rouge_l_metric")
METRICS.register_lazy("meteor", "harness.metrics.report:meteor_metric")
METRICS.register_lazy("cider", "harness.metrics.report:cider_metric")
# Clinical efficacy (harness.metrics.clinical)
METRICS.register_lazy("chexpert_f1_micro", "harness.metrics.clinical:chexpert_f1_micro")
METRICS.register_lazy("chexpert_f1_macro", "harness.metrics.clinical:chexpert_f1_macro")
METRICS.register_lazy("chexpert_precision_micro", "harness.metrics.clinical:chexpert_precision_micro")
METRICS.register_lazy("chexpert_recall_micro", "harness.metrics.clinical:chexpert_recall_micro")
METRICS.register_lazy("hallucination_rate", "harness.metrics.clinical:hallucination_rate")
# Exact findings of the synthetic suite's reports (harness.metrics.synth_findings)
METRICS.register_lazy("finding_precision", "harness.metrics.synth_findings:finding_precision")
METRICS.register_lazy("finding_recall", "harness.metrics.synth_findings:finding_recall")
METRICS.register_lazy("finding_f1", "harness.metrics.synth_findings:finding_f1")
METRICS.register_lazy("laterality_accuracy", "harness.metrics.synth_findings:laterality_accuracy")
METRICS.register_lazy("false_finding_rate", "harness.metrics.synth_findings:false_finding_rate")


def compute_metrics(names, predictions, references, *, seed: int = 0, n_boot: int = 1000) -> dict[str, MetricResult]:
    """Score several metrics on the same samples, sharing work within each backend.

    The report metrics share one PTB tokenization, one METEOR JVM and one n-gram pass; the clinical
    metrics share one labelling of each report; anything else (including plugins) is computed alone.
    """
    from harness.metrics.suite import compute_metrics as _compute

    return _compute(names, predictions, references, seed=seed, n_boot=n_boot)


def evaluate_module_path(name: str):
    """The folder of the local Hugging Face ``evaluate`` module for ``name`` (``evaluate.load(str(path))``)."""
    from harness.metrics.suite import evaluate_module_path as _path

    return _path(name)


__all__ = ["METRICS", "Metric", "MetricResult", "compute_metrics", "evaluate_module_path", "get_metric"]
