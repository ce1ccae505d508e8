"""Med-VQA metrics: closed-question accuracy and open-question token scores, each in two versions.

The default metrics score what an answer says; the ``*_llava_med`` metrics reproduce LLaVA-Med's
evaluation code (microsoft/LLaVA-Med, ``llava/eval/run_eval.py`` and
``llava/eval/eval_metrics/evaluate_metrics.py``) rule for rule, so numbers compare with papers that used
it (LLaVA-Med and the MMedPO paper's VQA table). docs/metrics.md gives every rule with a worked example.

Closed questions
- ``closed_accuracy``: a hit when the reply gives the reference's answer and does not take it back, read by
  :mod:`harness.metrics.closed_reader` (see :func:`closed_hit`); :func:`first_clause_closed_hit` is the rule
  it used through task versions 1.1, kept for comparison (``scripts/validate_closed_reader.py``).
- ``closed_accuracy_first_word``: the earlier rule: the prediction's first word when it is yes/no, else
  the only one of yes/no it contains (see :func:`first_word_closed_hit`).
- ``closed_accuracy_llava_med``: ``run_eval.py``'s CLOSED branch, denominator included: a prediction
  that contains "yes" or "no" (substrings) but not the reference is left out of the denominator (its
  per-sample score is NaN), see :func:`llava_med_closed_hit`.

Open questions, over the distinct tokens (word types) of the normalized texts:
- ``open_recall`` / ``open_precision`` / ``open_f1``: shares of distinct reference / prediction tokens
  found on the other side, and their harmonic mean (see :func:`token_prf`).
- ``open_recall_llava_med`` / ``open_precision_llava_med`` / ``open_f1_llava_med``: ``calculate_f1score``,
  which counts each predicted word as often as it occurs (see :func:`harness.metrics.llava_med_norm.llava_med_f1`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from harness.metrics.base import Metric, MetricResult, mean_result
from harness.metrics.closed_reader import names_option, read_yes_no_answer
from harness.metrics.llava_med_norm import PRF, llava_med_f1, normalize
from harness.metrics.registry import metric

_YES_NO = ("yes", "no")
_HEDGE = re.compile(r"\b(?:yes or no|no or yes)\b")
# Clause ends for the first-clause rule: the answer must stand alone before one of these (or the end).
_CLAUSE_END = re.compile(r"[,.;:!?\n]")
# Words that make a longer answer ambiguous wherever they occur after the answer.
_ALTERNATIVES = frozenset({"or", "versus", "vs"})
# Negations: they may follow the answer "no" ("No, it is not enlarged") but no other answer.
_NEGATIONS = frozenset({"no", "not", "never", "none", "neither", "nor", "without", "cannot"})


def _words(text: object) -> list[str]:
    # Normalization drops most punctuation; strip what is left at word edges (".", "'", ":").
    return [w.strip(".:'") for w in normalize(str(text).lower()).split() if w.strip(".:'")]


def _is_negation(word: str) -> bool:
    return word in _NEGATIONS or word.endswith("n't")


def read_yes_no(prediction: object) -> str | None:
    """The single yes/no answer a prediction gives by the first-word rule, or None when it gives none or both."""
    words = _words(prediction)
    if not words or _HEDGE.search(" ".join(words)):
        return None
    if words[0] in _YES_NO:
        return words[0]
    found = {w for w in words if w in _YES_NO}
    return found.pop() if len(found) == 1 else None


def first_clause_closed_hit(prediction: object, reference: object) -> float:
    """``closed_accuracy``'s rule through task versions 1.1 (kept, unregistered, as the validation baseline):
    1.0 when the prediction gives the reference's answer and nothing else.

    Both sides are normalized (LLaVA-Med's ``normalize_word``: case, punctuation, articles, a trailing
    period). A hit when

    1. the normalized prediction equals the normalized reference ("Yes." for "yes", "The left lung" for
       "left lung"), or
    2. the prediction's first clause (text before the first , . ; : ! ? or line break) equals the
       reference, and the rest contains no "yes", no alternative ("or", "versus", "vs") and, unless the
       answer is "no", no negation ("no", "not", "never", "none", "neither", "nor", "without", "cannot",
       "...n't"). "Yes, there is a nodule." is a hit for "yes" and "No, there is no effusion." for "no";
       "Yes, no effusion.", "yes yes yes", "yes pleural effusion. There is normal." and "No, yes." are
       misses.

    An empty prediction or reference is a miss.
    """
    ref = _words(reference)
    if not ref:
        return 0.0
    text = str(prediction).lower()
    if _words(text) == ref:
        return 1.0
    parts = _CLAUSE_END.split(text, maxsplit=1)
    if len(parts) < 2 or _words(parts[0]) != ref:
        return 0.0
    rest = _words(parts[1])
    if any(w == "yes" or w in _ALTERNATIVES for w in rest):
        return 0.0
    if ref != ["no"] and any(_is_negation(w) for w in rest):
        return 0.0
    return 1.0


def first_word_closed_hit(prediction: object, reference: object) -> float:
    """``closed_accuracy_first_word``: the answer :func:`read_yes_no` reads equals a yes/no reference.

    It scores the first word when that is yes/no, so "yes yes yes" and "yes pleural effusion. There is
    normal." are hits for "yes". Other closed answers (VQA-RAD has "left", "ct", ...) must occur in the
    prediction as a whole-word phrase after normalization.
    """
    ref_words = _words(reference)
    if len(ref_words) == 1 and ref_words[0] in _YES_NO:
        return float(read_yes_no(prediction) == ref_words[0])
    if not ref_words:
        return 0.0
    pattern = r"(?:^| )" + re.escape(" ".join(ref_words)) + r"(?: |$)"
    return float(re.search(pattern, " ".join(_words(prediction))) is not None)


def closed_hit(prediction: object, reference: object) -> float:
    """``closed_accuracy``'s rule: 1.0 when the reply gives the reference's answer and does not take it back.

    Read by :mod:`harness.metrics.closed_reader`: a yes/no reference needs the reply's answer
    (:func:`~harness.metrics.closed_reader.read_yes_no_answer`: a leading "yes"/"no" with any explanation
    that does not take it back, "The answer is no", "It is not present.", "Probably not."); another
    reference needs the reply to name it with no negation or alternative beside it
    (:func:`~harness.metrics.closed_reader.names_option`). A normalized exact match is always a hit; an
    empty prediction or reference is a miss.
    """
    ref = _words(reference)
    if not ref:
        return 0.0
    if _words(prediction) == ref:
        return 1.0
    if ref in (["yes"], ["no"]):
        return float(read_yes_no_answer(prediction) == ref[0])
    return float(names_option(prediction, reference))


# The earlier name of the first-word rule (it was called strict).
strict_closed_hit = first_word_closed_hit


def llava_med_closed_hit(prediction: object, reference: object) -> float:
    """LLaVA-Med ``run_eval.py``, ``evaluate()``, the ``CLOSED`` branch: 1.0, 0.0 or NaN (not counted).

    Both sides are lowercased and normalized (``normalize_word``). When the prediction contains "yes" or
    "no" as substrings, a hit is 1.0 if the reference is a substring of it; otherwise upstream appends
    nothing, so the item leaves the denominator: NaN here. A prediction with neither substring is 0.0.
    """
    pred = normalize(str(prediction).lower())
    ref = normalize(str(reference).lower())
    if "yes" in pred or "no" in pred:
        return 1.0 if ref in pred else math.nan
    return 0.0


def _token_set(text: object) -> set[str]:
    return set(_words(text))


def token_prf(prediction: object, reference: object) -> PRF:
    """(precision, recall, F1) over distinct normalized tokens; 0 for an empty side.

    recall = |pred ∩ ref| / |ref|, precision = |pred ∩ ref| / |pred| over word types, so repeating a word
    adds nothing.
    """
    pred, ref = _token_set(prediction), _token_set(reference)
    if not pred or not ref:
        return PRF(0.0, 0.0, 0.0)
    shared = len(pred & ref)
    precision, recall = shared / len(pred), shared / len(ref)
    f1 = 2 * precision * recall / (precision + recall) if shared else 0.0
    return PRF(precision, recall, f1)


def _llava_med_prf(prediction: object, reference: object) -> PRF:
    """LLaVA-Med's open scores of raw texts: ``run_eval.py`` lowercases and normalizes, then
    ``calculate_f1score`` normalizes again (inside :func:`llava_med_f1`)."""
    return llava_med_f1(normalize(str(prediction).lower()), normalize(str(reference).lower()))


def _prf_score(prf, field: str, name: str, doc: str | None = None):
    """A per-sample score: the ``field`` of ``prf(prediction, reference)`` (a :class:`PRF`)."""
    def score(prediction: object, reference: object) -> float:
        return getattr(prf(prediction, reference), field)

    score.__name__ = score.__qualname__ = name  # picklable by reference, like the def it stands for
    score.__doc__ = doc
    return score


open_recall_score = _prf_score(token_prf, "recall", "open_recall_score",
                               "Share of the reference's distinct tokens found in the prediction.")
open_precision_score = _prf_score(token_prf, "precision", "open_precision_score")
open_f1_score = _prf_score(token_prf, "f1", "open_f1_score")
open_recall_llava_med_score = _prf_score(
    _llava_med_prf, "recall", "open_recall_llava_med_score",
    "LLaVA-Med ``calculate_f1score``'s recall: the prediction's repeats of a shared word all count.")
open_precision_llava_med_score = _prf_score(_llava_med_prf, "precision", "open_precision_llava_med_score")
open_f1_llava_med_score = _prf_score(_llava_med_prf, "f1", "open_f1_llava_med_score")


def exact_match_score(prediction: object, reference: object) -> float:
    return float(normalize(str(prediction).lower()) == normalize(str(reference).lower()))


_RUN_EVAL = "microsoft/LLaVA-Med llava/eval/run_eval.py evaluate(), CLOSED branch"
_F1SCORE = "microsoft/LLaVA-Med llava/eval/eval_metrics/evaluate_metrics.py calculate_f1score"


@metric
def _per_sample_metric(name: str, score, subset: str, description: str, reference: str = "",
                       version: str = "1") -> Metric:
    def compute(
        predictions: Sequence[object], references: Sequence[object], *, seed: int = 0, n_boot: int = 1000
    ) -> MetricResult:
        scores = [score(p, r) for p, r in zip(predictions, references)]
        return mean_result(name, scores, seed=seed, n_boot=n_boot)

    return Metric(
        name=name, higher_is_better=True, compute=compute, subset=subset, description=description, reference=reference,
        version=version,
    )


def _llava_med_closed_compute(
    predictions: Sequence[object], references: Sequence[object], *, seed: int = 0, n_boot: int = 1000
) -> MetricResult:
    """Hits over the counted items only; ``per_sample`` keeps NaN for the items upstream leaves out.

    ``n`` is the denominator (the counted items). Upstream prints 0.0 when nothing is counted; so does this.
    """
    name = "closed_accuracy_llava_med"
    scores = [llava_med_closed_hit(p, r) for p, r in zip(predictions, references)]
    counted = [s for s in scores if not math.isnan(s)]
    if scores and not counted:
        result = MetricResult(name, 0.0, math.nan, math.nan, 0, True)
    else:
        result = mean_result(name, counted, seed=seed, n_boot=n_boot)
    return MetricResult(
        name=name, value=result.value, ci_low=result.ci_low, ci_high=result.ci_high, n=result.n,
        higher_is_better=True, per_sample=[float(s) for s in np.asarray(scores, dtype=np.float64)],
    )


closed_accuracy = _per_sample_metric(
    "closed_accuracy", closed_hit, "closed",
    "The closed-answer reader: the reply gives the reference's answer (a leading yes/no with any explanation "
    "that does not take it back, an elliptical reply, a named option) and nothing against it.",
    version="2",  # 1: the first-clause rule (``first_clause_closed_hit``), through task versions 1.1
)
closed_accuracy_first_word = _per_sample_metric(
    "closed_accuracy_first_word", first_word_closed_hit, "closed",
    "The prediction's first word if yes/no (else its only yes/no word) equals the reference.",
)
closed_accuracy_llava_med = metric(Metric(
    name="closed_accuracy_llava_med", higher_is_better=True, compute=_llava_med_closed_compute, subset="closed",
    description="LLaVA-Med run_eval.py CLOSED branch: substring rule; predictions with yes/no but not the "
    "reference leave the denominator.",
    reference=_RUN_EVAL,
))
open_recall = _per_sample_metric(
    "open_recall", open_recall_score, "open",
    "Share of the reference's distinct normalized tokens found in the prediction.",
)
open_precision = _per_sample_metric(
    "open_precision", open_precision_score, "open",
    "Share of the prediction's distinct normalized tokens found in the reference.",
)
open_f1 = _per_sample_metric(
    "open_f1", open_f1_score, "open", "Harmonic mean of open_precision and open_recall (distinct tokens)."
)
open_recall_llava_med = _per_sample_metric(
    "open_recall_llava_med", open_recall_llava_med_score, "open",
    "LLaVA-Med calculate_f1score recall: the prediction's repeated words each count (the MMedPO table's open column).",
    _F1SCORE,
)
open_precision_llava_med = _per_sample_metric(
    "open_precision_llava_med", open_precision_llava_med_score, "open", "LLaVA-Med calculate_f1score precision.", _F1SCORE,
)
open_f1_llava_med = _per_sample_metric(
    "open_f1_llava_med", open_f1_llava_med_score, "open", "LLaVA-Med calculate_f1score F1.", _F1SCORE,
)
open_exact_match = _per_sample_metric(
    "open_exact_match", exact_match_score, "open",
    "Normalized prediction equals normalized reference.",
)
