"""The shared body of the local Hugging Face ``evaluate`` modules (``harness.metrics.evaluate_module_path``).

``evaluate.load(path)`` wants one script per metric, named like its folder; each script only subclasses
``HarnessEvaluateMetric`` and sets ``metric_name``, so all of them run the harness's own metric code.
"""

from __future__ import annotations

from typing import ClassVar

import datasets
import evaluate

from harness.metrics import get_metric


class HarnessEvaluateMetric(evaluate.Metric):
    metric_name: ClassVar[str] = ""

    def _info(self):
        metric = get_metric(self.metric_name)
        return evaluate.MetricInfo(
            description=metric.description,
            citation="See docs/metrics.md of the harness.",
            inputs_description="predictions: list of str; references: list of str; seed: int; n_boot: int",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, seed=0, n_boot=1000):
        result = get_metric(self.metric_name)(list(predictions), list(references), seed=seed, n_boot=n_boot)
        return {
            self.metric_name: result.value,
            "ci_low": result.ci_low,
            "ci_high": result.ci_high,
            "n": result.n,
            "higher_is_better": result.higher_is_better,
            "per_sample": result.per_sample,
        }
