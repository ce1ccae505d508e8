"""Med-VQA metrics: closed-question accuracy (strict and LLaVA-Med legacy) and open-question scores.

Why strict is the default closed rule: LLaVA-Med's rule (``closed_accuracy_llava_med``) counts a hit
when the prediction contains the *substrings* "yes" or "no" and the reference is a substring of it. So
"there is a nodule" is a hit for the reference "no" ("no" inside "nodule"), and a hedge such as "yes or
no" is a hit for either reference. A model that rambles scores higher than one that answers, which is
the opposite of what preference optimization is meant to reward. The strict rule reads one answer
from the prediction (its first word if that is yes/no, else the only one of yes/no that occurs as a
whole word; none for "yes or no") and compares it with the reference; the legacy rule is kept, by name, for comparison with
papers that used it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from harness.metrics.base import Metric, MetricResult
from harness.metrics.bootstrap import mean_result
from harness.metrics.llava_med_norm import llava_med_f1, normalize

_YES_NO = ("yes", "no")
_HEDGE = re.compile(r"\b(?:yes or no|no or yes)\b")


def _words(text: object) -> list[str]:
    # Normalization drops most punctuation; strip what is left at word edges (".", "'", ":").
    return [w.strip(".:'") for w in normalize(str(text).lower()).split() if w.strip(".:'")]


def read_yes_no(prediction: object) -> str | None:
    """The single yes/no answer a prediction gives, or None when it gives none or both."""
    words = _words(prediction)
    if not words or _HEDGE.search(" ".join(words)):
        return None
    if words[0] in _YES_NO:
        return words[0]
    found = {w for w in words if w in _YES_NO}
    return found.pop() if len(found) == 1 else None


def strict_closed_hit(prediction: object, reference: object) -> float:
    """1.0 when the prediction answers the closed question the way the reference does.

    Yes/no references compare against :func:`read_yes_no`. Other closed answers (VQA-RAD has "left",
    "ct", ...) must occur in the prediction as a whole-word phrase after normalization.
    """
    ref_words = _words(reference)
    if len(ref_words) == 1 and ref_words[0] in _YES_NO:
        return float(read_yes_no(prediction) == ref_words[0])
    if not ref_words:
        return 0.0
    pattern = r"(?:^| )" + re.escape(" ".join(ref_words)) + r"(?: |$)"
    return float(re.search(pattern, " ".join(_words(prediction))) is not None)


def llava_med_closed_hit(prediction: object, reference: object) -> float:
    """LLaVA-Med ``run_eval.py``: lowercase + normalize both, then substring tests (see module doc)."""
    pred = normalize(str(prediction).lower())
    ref = normalize(str(reference).lower())
    return float(("yes" in pred or "no" in pred) and ref in pred)


def open_recall_score(prediction: object, reference: object) -> float:
    """LLaVA-Med's open-question "recall": ``calculate_f1score``'s recall after its normalization."""
    return llava_med_f1(normalize(str(prediction).lower()), normalize(str(reference).lower()))[2]


def open_f1_score(prediction: object, reference: object) -> float:
    return llava_med_f1(normalize(str(prediction).lower()), normalize(str(reference).lower()))[0]


def exact_match_score(prediction: object, reference: object) -> float:
    return float(normalize(str(prediction).lower()) == normalize(str(reference).lower()))


def _per_sample_metric(name: str, score, subset: str, description: str) -> Metric:
    def compute(
        predictions: Sequence[object], references: Sequence[object], *, seed: int = 0, n_boot: int = 1000
    ) -> MetricResult:
        scores = [score(p, r) for p, r in zip(predictions, references)]
        return mean_result(name, scores, seed=seed, n_boot=n_boot)

    return Metric(name=name, higher_is_better=True, compute=compute, subset=subset, description=description)


closed_accuracy = _per_sample_metric(
    "closed_accuracy", strict_closed_hit, "closed",
    "Strict closed accuracy: the prediction's single yes/no answer equals the reference (whole words).",
)
closed_accuracy_llava_med = _per_sample_metric(
    "closed_accuracy_llava_med", llava_med_closed_hit, "closed",
    "LLaVA-Med legacy rule: prediction contains 'yes' or 'no' and the reference as substrings.",
)
open_recall = _per_sample_metric(
    "open_recall", open_recall_score, "open",
    "LLaVA-Med open recall: share of reference tokens recovered, after LLaVA-Med normalization.",
)
open_exact_match = _per_sample_metric(
    "open_exact_match", exact_match_score, "open",
    "Normalized prediction equals normalized reference.",
)
open_f1 = _per_sample_metric(
    "open_f1", open_f1_score, "open", "LLaVA-Med token F1 after its normalization."
)
