"""Local Hugging Face `evaluate` module for the harness metric 'bleu'.

Load it from its folder, never from the Hub::

    import evaluate
    from harness.metrics import evaluate_module_path

    metric = evaluate.load(str(evaluate_module_path("bleu")))
    metric.compute(predictions=[...], references=[...], seed=0, n_boot=1000)

It wraps the same code as ``harness.metrics.get_metric("bleu")`` (see docs/metrics.md) and returns
the value, its bootstrap 95% CI, n and the per-sample scores.
"""

import datasets
import evaluate

from harness.metrics import get_metric

NAME = "bleu"


class HarnessMetric(evaluate.Metric):
    def _info(self):
        metric = get_metric(NAME)
        return evaluate.MetricInfo(
            description=metric.description,
            citation="See docs/metrics.md of the harness.",
            inputs_description="predictions: list of str; references: list of str; seed: int; n_boot: int",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, seed=0, n_boot=1000):
        result = get_metric(NAME)(list(predictions), list(references), seed=seed, n_boot=n_boot)
        return {
            NAME: result.value,
            "ci_low": result.ci_low,
            "ci_high": result.ci_high,
            "n": result.n,
            "higher_is_better": result.higher_is_better,
            "per_sample": result.per_sample,
        }
