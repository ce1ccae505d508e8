"""The metric contract.

A metric turns predictions and references into per-sample scores (kept for paired statistics) and an
aggregate with a 95% confidence interval from ``harness.stats.intervals`` (Wilson for proportions, a seeded
bootstrap otherwise). Values are in natural units (accuracy 0.734, not 73.4); tables multiply by
``display_scale``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetricResult:
    name: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    higher_is_better: bool
    per_sample: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        return {
            "metric": self.name,
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            "higher_is_better": self.higher_is_better,
        }


@dataclass(frozen=True)
class ItemForm:
    """How a pooled metric (a corpus or macro value, not a mean of per-sample scores) decomposes into per-item
    sufficient statistics, so paired tests and intervals are on the value the metric reports
    (``harness.stats.items`` takes these functions; ``harness.metrics.items`` applies them by metric name).

    ``counts(predictions, references)`` gives the ``(n, ...)`` per-item statistics, shared by every metric of
    one ``family`` (computed once per list of predictions); ``aggregate`` turns ``(B, ...)`` summed statistics
    into ``(B,)`` metric values; ``support`` (optional) says what a value rests on (e.g. claimed findings).
    """

    family: str
    counts: Callable[[Sequence[object], Sequence[object]], Any]
    aggregate: Callable[[Any], Any]
    kind: str = "corpus"  # "corpus" or "macro"
    support: Callable[[Any], float] | None = None


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    ``subset`` names the answer type it scores (``"closed"``, ``"open"``, ``"report"``) or None for all
    samples; the evaluation engine passes only matching samples. ``items`` is the per-item decomposition of a
    pooled metric; None for a metric whose value is the mean of its per-sample scores (the default, plugins
    included), unless ``no_items`` says why it has none.
    """

    name: str
    higher_is_better: bool
    compute: Callable[..., MetricResult]  # (predictions, references, *, seed=0, n_boot=1000) -> MetricResult
    subset: str | None = None
    display_scale: float = 100.0
    description: str = ""
    # The public code whose numbers this metric reproduces (file and function), or "" when it is our own rule.
    reference: str = ""
    # The scoring rule's version: bumped when a rule change can change a score. Evaluation signatures hold every
    # version past "1" (``harness.metrics.registry.scoring_versions``), so a stored evaluation scored by an
    # earlier rule is never reused next to scores from the current one.
    version: str = "1"
    items: ItemForm | None = None
    no_items: str = ""  # why the metric has no per-item statistics (paired tests refuse it), or ""

    def __call__(self, predictions: Sequence[str], references: Sequence[str], **kwargs) -> MetricResult:
        if len(predictions) != len(references):
            raise ValueError(f"{self.name}: {len(predictions)} predictions but {len(references)} references")
        return self.compute(predictions, references, **kwargs)


def mean_result(name: str, per_sample: Sequence[float], *, higher_is_better: bool = True, seed: int = 0,
                n_boot: int = 1000) -> MetricResult:
    """The result for a metric whose value is the mean of its per-sample scores (0/1 scores: a proportion,
    with a Wilson interval; other scores: a percentile bootstrap; see ``harness.stats.intervals``)."""
    import numpy as np

    from harness.stats.intervals import mean_interval

    scores = np.asarray(per_sample, dtype=np.float64)
    value = float(scores.mean()) if scores.size else float("nan")
    low, high = mean_interval(scores, seed=seed, n_boot=n_boot)
    return MetricResult(name=name, value=value, ci_low=low, ci_high=high, n=int(scores.size),
                        higher_is_better=higher_is_better, per_sample=[float(s) for s in scores])


def counted_results(names: Sequence[str], counts: Any, *, aggregate: Callable[[str, Any], Any],
                    bounds: Callable[..., tuple[float, float]], per_item: Callable[[str, Any], Any],
                    lower_is_better: Sequence[str] = (), seed: int = 0, n_boot: int = 1000,
                    ) -> dict[str, MetricResult]:
    """Results for metrics scored from per-item counts computed once (an ``(n, ...)`` array): each value is
    ``aggregate(name, summed counts)`` (NaN with no items), its interval ``bounds(name, counts, seed=,
    n_boot=)``, its per-sample scores ``per_item(name, counts)``."""
    n = len(counts)
    results = {}
    for name in dict.fromkeys(names):
        value = float(aggregate(name, counts.sum(axis=0))) if n else float("nan")
        low, high = bounds(name, counts, seed=seed, n_boot=n_boot)
        results[name] = MetricResult(
            name=name, value=value, ci_low=low, ci_high=high, n=n, higher_is_better=name not in lower_is_better,
            per_sample=[float(x) for x in per_item(name, counts)] if n else [],
        )
    return results
