"""The labeler against 365 hand-labelled IU-Xray sentences (tests/data/labeler_validation, rules in RULES.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.errors import DataError
from harness.findings.labeler import label_report
from harness.metrics.labeler_validation import read_validation_set, validate

DATA = Path(__file__).resolve().parents[1] / "data" / "labeler_validation"
VALIDATION_SET = DATA / "iu_xray_sentences.jsonl"
# 80 more sentences, labelled after the labeler's rules were written (see docs/metrics.md for its first score)
SECOND_SET = DATA / "iu_xray_sentences_heldout.jsonl"


@pytest.fixture(scope="module")
def result():
    return validate(read_validation_set(VALIDATION_SET))


def test_the_set_is_large_and_covers_every_label_class(result):
    assert result.sentences >= 300
    gold = {g for (g, _), n in result.confusion.items() if g is not None}
    assert gold == {1, 0, -1}


def test_at_least_95_percent_of_mentions_right(result):
    assert result.accuracy >= 0.95, f"{result.right}/{result.mentions}"
    for name, (precision, recall, _) in result.class_scores().items():
        assert precision >= 0.85 and recall >= 0.85, name


def test_second_set_floor():
    second = validate(read_validation_set(SECOND_SET))
    assert second.sentences == 80 and second.accuracy >= 0.95, f"{second.right}/{second.mentions}"


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [  # the issue's failures, each now right
        ("Increased interstitial lung markings.", {"Lung Opacity": 1}),
        ("The heart is slightly large.", {"Cardiomegaly": 1}),
        ("Blunting of the costophrenic XXXX likely represents scarring. No pleural effusion.", {"Pleural Effusion": 0}),
        ("No pleural line to suggest pneumothorax.", {"Pneumothorax": 0}),
        ("No focal air space opacity to suggest a pneumonia.", {"Pneumonia": 0, "Lung Opacity": 0}),
        ("Evaluation for pneumothorax is limited.", {"Pneumothorax": None}),
    ],
)
def test_issue_cases(sentence, expected):
    labels = label_report(sentence)
    assert {o: labels[o] for o in expected} == expected


def test_a_bad_line_is_a_one_line_error(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text('{"sentence": "No effusion.", "labels": {"Effusion": 0}}\n')
    with pytest.raises(DataError, match="line 1.*'Effusion'"):
        read_validation_set(path)


@pytest.mark.parametrize(
    ("sentence", "cardiomegaly"),
    [
        ("Heart is enlarged with normal pulmonary vascularity.", 1),  # the first state word names the state
        ("Heart size upper limits of normal.", -1),
        ("The heart is not significantly enlarged.", 0),
        ("Heart size normal with increased interstitial markings.", 0),
        ("Borderline enlarged heart.", -1),
        ("Stable cardiomediastinal silhouette with normal heart size.", 0),
        ("History of congestive heart failure.", None),  # a heart without a size statement
    ],
)
def test_heart_size_statements(sentence, cardiomegaly):
    assert label_report(sentence)["Cardiomegaly"] == cardiomegaly


def test_a_limited_evaluation_drops_only_what_it_covers():
    labels = label_report("Evaluation for pneumothorax is limited by low lung volumes with bibasilar atelectasis.")
    assert labels["Pneumothorax"] is None and labels["Atelectasis"] == 1
