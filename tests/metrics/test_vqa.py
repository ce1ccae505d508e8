"""Med-VQA metrics: LLaVA-Med normalization quirks, the closed rules, the open token scores.

Legacy expectations are worked out by hand from microsoft/LLaVA-Med's rules:
- closed: ``llava/eval/run_eval.py``, ``evaluate()``, the ``CLOSED`` branch (after ``normalize_word`` of
  ``llava/eval/eval_metrics/glossary.py``): if "yes" or "no" is a substring of the prediction, append 1 when
  the reference is a substring too, else append nothing; otherwise append 0. Score = sum / count appended.
- open: ``llava/eval/eval_metrics/evaluate_metrics.py``, ``calculate_f1score``: word counts of each side;
  TP = the prediction's counts of shared words, FP = its counts of other words, FN = the reference's
  counts of words the prediction lacks; (0, 0, 0) for an empty side or TP = 0.
"""

from __future__ import annotations

import math

import pytest

from harness.metrics import get_metric
from harness.metrics.llava_med_norm import llava_med_f1, normalize
from harness.metrics.vqa import (
    closed_hit,
    first_clause_closed_hit,
    first_word_closed_hit,
    llava_med_closed_hit,
    open_f1_llava_med_score,
    open_precision_llava_med_score,
    open_recall_llava_med_score,
    read_yes_no,
    token_prf,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The heart, is NOT enlarged.", "heart is not enlarged"),  # "," touches a space: deleted
        ("left-sided", "left sided"),  # "-" inside a word: becomes a space
        ("two nodules", "2 nodules"),  # number words become digits
        ("1,000 mL", "1000 ml"),  # a digit-comma-digit group deletes the punctuation
        ("an x-ray of the chest", "x ray of chest"),  # articles dropped
        ("dont know", "don't know"),  # contraction table
        ("3.5 cm.", "3.5 cm"),  # a period before a digit stays
        (7, "7"),  # integer answers (VQA-RAD) are str()-ed
    ],
)
def test_normalize_matches_llava_med_rules(text, expected):
    assert normalize(text) == expected


def test_normalize_removes_at_most_32_periods():
    # Upstream passes re.UNICODE (32) as re.sub's count: the 33rd period survives.
    assert normalize(" ".join(["x."] * 33)) == " ".join(["x"] * 32 + ["x."])



# ---- closed: LLaVA-Med's CLOSED branch, by hand -------------------------------------------------------


@pytest.mark.parametrize(
    ("prediction", "reference", "expected", "why"),
    [
        ("Yes.", "yes", 1.0, "normalized 'yes' contains 'yes' and the reference"),
        ("there is a nodule", "no", 1.0, "'no' inside 'nodule' passes both substring tests"),
        ("the heart is normal", "no", 1.0, "'no' inside 'normal'"),
        ("not enlarged", "yes", math.nan, "'no' inside 'not' opens the branch, 'yes' absent: nothing appended"),
        ("no", "yes", math.nan, "a wrong yes/no answer leaves the denominator"),
        ("yes or no", "yes", 1.0, "a hedge contains both answers"),
        ("yes or no", "no", 1.0, "a hedge contains both answers"),
        ("yes yes yes yes", "no", math.nan, "repeats: 'yes' present, 'no' absent: not counted"),
        ("", "yes", 0.0, "an empty prediction has neither substring: appended 0"),
        ("right", "left", 0.0, "no yes/no substring: appended 0"),
        ("No, it is on the left.", "left", 1.0, "normalized 'no it is on left' contains 'no' and 'left'"),
        ("Yes, the lesion is left-sided.", "left", 1.0, "'-' inside a word becomes a space: 'left sided'"),
    ],
)
def test_llava_med_closed_branch_by_hand(prediction, reference, expected, why):
    got = llava_med_closed_hit(prediction, reference)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected, why


def test_closed_accuracy_llava_med_denominator_by_hand():
    preds = ["Yes", "no", "the heart is normal", "not enlarged", "", "yes yes yes yes"]
    refs = ["yes", "yes", "no", "yes", "yes", "no"]
    legacy = get_metric("closed_accuracy_llava_med")(preds, refs, n_boot=50)
    # appended: 1 (Yes), - (no), 1 (normal), - (not), 0 (empty), - (yes...): 2 hits of 3 counted.
    assert legacy.value == pytest.approx(2 / 3) and legacy.n == 3
    assert [s if not math.isnan(s) else None for s in legacy.per_sample] == [1.0, None, 1.0, None, 0.0, None]
    ours = get_metric("closed_accuracy")(preds, refs, n_boot=50)
    assert ours.per_sample == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0] and ours.n == 6


def test_legacy_closed_scores_every_plain_yes_no_answer_as_right():
    # Half the answers wrong, all plain yes/no: upstream only ever appends the hits.
    preds, refs = ["yes", "no", "yes", "no"], ["yes", "yes", "no", "no"]
    legacy = get_metric("closed_accuracy_llava_med")(preds, refs, n_boot=50)
    assert legacy.value == 1.0 and legacy.n == 2
    assert get_metric("closed_accuracy")(preds, refs, n_boot=50).value == 0.5


def test_legacy_closed_with_nothing_counted_is_zero_like_upstream():
    result = get_metric("closed_accuracy_llava_med")(["no"], ["yes"], n_boot=50)
    assert result.value == 0.0 and result.n == 0 and math.isnan(result.ci_low)


# ---- closed: our rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prediction", "reference", "hit"),
    [
        ("Yes", "yes", 1.0),
        ("The left lung.", "left lung", 1.0),  # articles, case and the trailing period do not matter
        ("Yes, there is a nodule.", "yes", 1.0),  # first clause is the answer, the rest is unambiguous
        ("No, there is no effusion.", "no", 1.0),  # a negation may follow the answer "no"
        ("No. The heart is not enlarged", "no", 1.0),
        ("yes yes yes yes", "yes", 0.0),  # the first clause is not the answer
        ("yes pleural effusion. There is normal.", "yes", 0.0),
        ("Yes, no effusion.", "yes", 0.0),  # a negation after "yes"
        ("Yes, but it is not enlarged", "yes", 0.0),
        ("No, yes.", "no", 0.0),  # both answers
        ("yes or no", "yes", 0.0),
        ("Yes, or no", "yes", 0.0),  # an alternative after the answer
        ("there is a nodule", "no", 0.0),
        ("the heart is normal", "no", 0.0),
        ("not", "no", 0.0),
        ("", "yes", 0.0),
        ("yes", "", 0.0),
        ("Left, in the upper lobe.", "left", 1.0),
        ("left or right", "left", 0.0),
        ("It is on the left side.", "left", 0.0),  # the answer is not the first clause
    ],
)
def test_first_clause_rule_is_kept_unchanged(prediction, reference, hit):
    """closed_accuracy's rule through task versions 1.1, kept (unregistered) as the validation script's baseline."""
    assert first_clause_closed_hit(prediction, reference) == hit


@pytest.mark.parametrize(
    ("prediction", "reference", "hit"),
    [
        ("Yes", "yes", 1.0),
        ("The left lung.", "left lung", 1.0),
        ("Yes, there is a nodule.", "yes", 1.0),
        ("No, there is no effusion.", "no", 1.0),
        # closed_accuracy 1.2 (the closed-answer reader) credits what the first-clause rule missed:
        ("yes yes yes yes", "yes", 1.0),  # one answer, repeated
        ("Yes, but it is not enlarged", "yes", 1.0),  # an explanation that does not take the answer back
        ("Yes, no effusion.", "yes", 1.0),  # (right for "Is the lung clear?"; the question is not seen)
        ("It is on the left side.", "left", 1.0),  # a choice answer in a sentence
        ("No, yes.", "no", 0.0),
        ("yes or no", "yes", 0.0),
        ("Yes, or no", "yes", 0.0),
        ("there is a nodule", "no", 0.0),
        ("the heart is normal", "no", 0.0),
        ("not", "no", 0.0),
        ("", "yes", 0.0),
        ("yes", "", 0.0),
        ("Left, in the upper lobe.", "left", 1.0),
        ("left or right", "left", 0.0),
    ],
)
def test_closed_hit(prediction, reference, hit):
    assert closed_hit(prediction, reference) == hit


def test_first_word_rule_keeps_its_name_and_its_weakness():
    assert first_word_closed_hit("yes yes yes yes", "yes") == 1.0
    assert first_word_closed_hit("yes pleural effusion. There is normal.", "yes") == 1.0
    assert first_word_closed_hit("there is a nodule", "no") == 0.0
    assert first_word_closed_hit("yes or no", "yes") == 0.0
    assert first_word_closed_hit("It is on the left side.", "Left") == 1.0
    assert first_word_closed_hit("leftover contrast", "left") == 0.0
    result = get_metric("closed_accuracy_first_word")(["yes yes", "no"], ["yes", "yes"], n_boot=50)
    assert result.per_sample == [1.0, 0.0]


@pytest.mark.parametrize(
    ("prediction", "answer"),
    [("No.", "no"), ("Yes, there is no effusion", "yes"), ("There is no effusion", "no"),
     ("yes or no", None), ("nodule", None), ("", None)],
)
def test_read_yes_no(prediction, answer):
    assert read_yes_no(prediction) == answer


# ---- open: LLaVA-Med's calculate_f1score and the distinct-token scores, by hand -------------------------


def test_llava_med_f1_counts_by_hand():
    assert llava_med_f1("left lung", "the left lung") == (1.0, 1.0, 1.0)
    precision, recall, f1 = llava_med_f1("right lung", "left lung")
    assert (precision, recall) == (0.5, 0.5) and f1 == pytest.approx(0.5)
    assert llava_med_f1("", "lung") == (0.0, 0.0, 0.0)


def test_both_prf_helpers_return_precision_recall_f1_in_that_order():
    # "lung lung lung" vs "left lung": repeats count for LLaVA-Med (P 1, R 3/4), not for word types (P 1, R 1/2)
    legacy, distinct = llava_med_f1("lung lung lung", "left lung"), token_prf("lung lung lung", "left lung")
    assert (legacy.precision, legacy.recall, legacy.f1) == pytest.approx((1.0, 0.75, 1.5 / 1.75))
    assert tuple(legacy) == (legacy.precision, legacy.recall, legacy.f1)
    assert (distinct.precision, distinct.recall, distinct.f1) == pytest.approx((1.0, 0.5, 1 / 1.5))
    assert tuple(distinct) == (distinct.precision, distinct.recall, distinct.f1)


@pytest.mark.parametrize(
    ("prediction", "reference", "legacy_prf", "distinct_prf"),
    [
        # repeats: pred counts lung:3; TP 3, FP 0, FN 1 (left) -> P 1, R 3/4. Distinct: 1 of {left, lung}.
        ("lung lung lung", "left lung", (1.0, 0.75), (1.0, 0.5)),
        # "left" four times: TP 4, FN 1 -> R 4/5; distinct R 1/2.
        ("left left left left", "left lung", (1.0, 0.8), (1.0, 0.5)),
        # the case: articles drop, 'is' x4 and 'there' count 5 TP; FN 6 other reference words.
        ("The The The There is is is is", "there is no effusion in lung here now", (1.0, 5 / 11), (1.0, 2 / 8)),
        # 'no' and 'nodule' are different words for token scores: TP 1 (nodule), FP 1 (no).
        ("no nodule", "nodule", (0.5, 1.0), (0.5, 1.0)),
        ("not normal", "normal", (0.5, 1.0), (0.5, 1.0)),
        # repeated reference word: ref counts left:2, lung:1; pred left:1 -> TP 1, FN 1 (lung) -> R 1/2.
        ("left", "left left lung", (1.0, 0.5), (1.0, 0.5)),
        # punctuation: '-' inside a word -> space, ',' and '(' touching a space deleted, ')' -> space,
        # '.' deleted: "left lung upper" vs "upper left lung".
        ("Left-lung, (upper).", "upper left lung", (1.0, 1.0), (1.0, 1.0)),
        ("two", "2", (1.0, 1.0), (1.0, 1.0)),  # number words become digits
        ("", "liver", (0.0, 0.0), (0.0, 0.0)),  # empty prediction
        ("spleen", "liver", (0.0, 0.0), (0.0, 0.0)),  # nothing shared
    ],
)
def test_open_scores_by_hand(prediction, reference, legacy_prf, distinct_prf):
    assert open_precision_llava_med_score(prediction, reference) == pytest.approx(legacy_prf[0])
    assert open_recall_llava_med_score(prediction, reference) == pytest.approx(legacy_prf[1])
    p, r = legacy_prf
    assert open_f1_llava_med_score(prediction, reference) == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
    precision, recall, f1 = token_prf(prediction, reference)
    assert (precision, recall) == pytest.approx(distinct_prf)
    p, r = distinct_prf
    assert f1 == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)


def test_open_metrics_by_name():
    preds = ["The left lung.", "right lung", "liver", "lung lung lung"]
    refs = ["left lung", "left lung", "spleen", "left lung"]
    assert get_metric("open_recall")(preds, refs, n_boot=20).per_sample == [1.0, 0.5, 0.0, 0.5]
    assert get_metric("open_recall_llava_med")(preds, refs, n_boot=20).per_sample == [1.0, 0.5, 0.0, 0.75]
    assert get_metric("open_exact_match")(preds, refs, n_boot=20).per_sample == [1.0, 0.0, 0.0, 0.0]
    assert get_metric("open_precision")(preds, refs, n_boot=20).per_sample == [1.0, 0.5, 0.0, 1.0]
    f1 = get_metric("open_f1")(preds, refs, n_boot=20)
    assert f1.value == pytest.approx((1.0 + 0.5 + 0.0 + 2 / 3) / 4)
    legacy_f1 = get_metric("open_f1_llava_med")(preds, refs, n_boot=20)
    assert legacy_f1.per_sample[3] == pytest.approx(2 * 0.75 / 1.75)


def test_metric_refuses_length_mismatch():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        get_metric("open_f1")(["a", "b"], ["a"])


def test_vqa_metrics_name_their_reference_code():
    for name in ("closed_accuracy_llava_med", "open_recall_llava_med", "open_f1_llava_med"):
        assert "LLaVA-Med" in get_metric(name).reference
    assert get_metric("closed_accuracy").reference == ""
