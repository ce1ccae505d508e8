"""Med-VQA metrics: LLaVA-Med normalization quirks, the strict and legacy closed rules, open scores."""

from __future__ import annotations

import pytest

from harness.metrics import get_metric
from harness.metrics.llava_med_norm import llava_med_f1, normalize
from harness.metrics.vqa import llava_med_closed_hit, read_yes_no, strict_closed_hit


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


def test_legacy_rule_counts_no_inside_nodule_and_strict_does_not():
    assert llava_med_closed_hit("there is a nodule", "no") == 1.0
    assert strict_closed_hit("there is a nodule", "no") == 0.0


@pytest.mark.parametrize("prediction", ["the heart is normal", "an enlarged lymph node", "a known mass"])
def test_legacy_rule_finds_no_inside_other_words(prediction):
    assert llava_med_closed_hit(prediction, "no") == 1.0
    assert strict_closed_hit(prediction, "no") == 0.0


@pytest.mark.parametrize(
    ("prediction", "answer"),
    [("No.", "no"), ("Yes, there is no effusion", "yes"), ("There is no effusion", "no"),
     ("yes or no", None), ("nodule", None), ("", None)],
)
def test_read_yes_no(prediction, answer):
    assert read_yes_no(prediction) == answer


def test_hedged_answer_scores_under_legacy_but_not_strict():
    for reference in ("yes", "no"):
        assert llava_med_closed_hit("yes or no", reference) == 1.0
        assert strict_closed_hit("yes or no", reference) == 0.0


def test_strict_rule_for_non_yes_no_closed_answers_needs_whole_words():
    assert strict_closed_hit("It is on the left side.", "Left") == 1.0
    assert strict_closed_hit("leftover contrast", "left") == 0.0
    assert strict_closed_hit("An axial CT", "ct") == 1.0


def test_closed_accuracy_values_by_hand():
    preds = ["Yes", "there is a nodule", "no, normal", "yes or no"]
    refs = ["yes", "no", "no", "yes"]
    strict = get_metric("closed_accuracy")(preds, refs, n_boot=50)
    legacy = get_metric("closed_accuracy_llava_med")(preds, refs, n_boot=50)
    assert strict.per_sample == [1.0, 0.0, 1.0, 0.0] and strict.value == pytest.approx(0.5)
    assert legacy.per_sample == [1.0, 1.0, 1.0, 1.0] and legacy.value == pytest.approx(1.0)
    assert strict.higher_is_better and strict.n == 4


def test_llava_med_f1_counts_by_hand():
    assert llava_med_f1("left lung", "the left lung") == (1.0, 1.0, 1.0)
    f1, precision, recall = llava_med_f1("right lung", "left lung")
    assert (precision, recall) == (0.5, 0.5) and f1 == pytest.approx(0.5)
    # TP counts the prediction's repeats: "lung lung" vs "left lung" -> tp 2, fn 1.
    f1, precision, recall = llava_med_f1("lung lung", "left lung")
    assert precision == 1.0 and recall == pytest.approx(2 / 3) and f1 == pytest.approx(0.8)
    assert llava_med_f1("", "lung") == (0.0, 0.0, 0.0)


def test_open_metrics_by_hand():
    preds = ["The left lung.", "right lung", "liver"]
    refs = ["left lung", "left lung", "spleen"]
    recall = get_metric("open_recall")(preds, refs, n_boot=20)
    exact = get_metric("open_exact_match")(preds, refs, n_boot=20)
    f1 = get_metric("open_f1")(preds, refs, n_boot=20)
    assert recall.per_sample == [1.0, 0.5, 0.0]
    assert exact.per_sample == [1.0, 0.0, 0.0]
    assert f1.value == pytest.approx((1.0 + 0.5 + 0.0) / 3)


def test_metric_refuses_length_mismatch():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        get_metric("open_f1")(["a", "b"], ["a"])
