"""The metric registry: names -> ``Metric`` objects (lazy ``module:attr`` entries; plugins through the
``harness.metrics`` entry-point group). ``harness.metrics`` re-exports it."""

from __future__ import annotations

from harness.core.registry import Registry
from harness.metrics.base import Metric

METRICS: Registry[Metric] = Registry("metric", entry_point_group="harness.metrics")


def get_metric(name: str) -> Metric:
    return METRICS.get(name)


def scoring_versions(names) -> dict[str, str]:
    """``{metric: version}`` for the named metrics whose scoring rule moved past its first version (see
    ``Metric.version``); empty while every rule is at "1", so keys made before rules were versioned stay valid."""
    versions = {}
    for name in sorted(set(names)):
        version = get_metric(name).version
        if version != "1":
            versions[name] = version
    return versions


# Med-VQA (harness.metrics.vqa)
METRICS.register_lazy("closed_accuracy", "harness.metrics.vqa:closed_accuracy")
METRICS.register_lazy("closed_accuracy_llava_med", "harness.metrics.vqa:closed_accuracy_llava_med")
METRICS.register_lazy("open_recall", "harness.metrics.vqa:open_recall")
METRICS.register_lazy("open_exact_match", "harness.metrics.vqa:open_exact_match")
METRICS.register_lazy("open_f1", "harness.metrics.vqa:open_f1")
METRICS.register_lazy("closed_accuracy_first_word", "harness.metrics.vqa:closed_accuracy_first_word")
METRICS.register_lazy("open_precision", "harness.metrics.vqa:open_precision")
METRICS.register_lazy("open_recall_llava_med", "harness.metrics.vqa:open_recall_llava_med")
METRICS.register_lazy("open_precision_llava_med", "harness.metrics.vqa:open_precision_llava_med")
METRICS.register_lazy("open_f1_llava_med", "harness.metrics.vqa:open_f1_llava_med")
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
# POPE-style probe sets of present and absent findings (harness.regress.pope; the regression gate's probes)
METRICS.register_lazy("pope_accuracy", "harness.regress.pope:pope_accuracy")
METRICS.register_lazy("pope_precision", "harness.regress.pope:pope_precision")
METRICS.register_lazy("pope_recall", "harness.regress.pope:pope_recall")
METRICS.register_lazy("pope_f1", "harness.regress.pope:pope_f1")
METRICS.register_lazy("pope_yes_ratio", "harness.regress.pope:pope_yes_ratio")
METRICS.register_lazy("pope_yes_bias", "harness.regress.pope:pope_yes_bias")
