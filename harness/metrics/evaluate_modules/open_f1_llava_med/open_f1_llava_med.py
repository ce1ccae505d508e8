"""Local Hugging Face `evaluate` module for the harness metric 'open_f1_llava_med'.

Load it from its folder, never from the Hub::

    import evaluate
    from harness.metrics import evaluate_module_path

    metric = evaluate.load(str(evaluate_module_path("open_f1_llava_med")))
    metric.compute(predictions=[...], references=[...], seed=0, n_boot=1000)

It runs the same code as ``harness.metrics.get_metric("open_f1_llava_med")`` (see docs/metrics.md) and returns the
value, its bootstrap 95% CI, n and the per-sample scores.
"""

# a module import, not the class: evaluate.load takes the first Metric subclass it finds in this namespace
from harness.metrics import evaluate_module


class HarnessMetric(evaluate_module.HarnessEvaluateMetric):
    metric_name = "open_f1_llava_med"
