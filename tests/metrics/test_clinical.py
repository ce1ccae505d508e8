"""The CheXpert-style labeler on hand-labelled sentences, and the clinical efficacy metrics by hand."""

from __future__ import annotations

import pytest

from harness.findings.labeler import OBSERVATIONS, label_report
from harness.metrics import compute_metrics

# (report, the non-blank labels a radiologist would give: 1 positive, 0 negative, -1 uncertain)
HAND_LABELLED = [
    ("No focal consolidation, pleural effusion, or pneumothorax. Heart size is normal.",
     {"Consolidation": 0, "Pleural Effusion": 0, "Pneumothorax": 0, "Cardiomegaly": 0, "No Finding": 1}),
    ("Mild cardiomegaly. No pneumothorax, small left pleural effusion.",
     {"Cardiomegaly": 1, "Pneumothorax": 0, "Pleural Effusion": 1}),
    ("Cannot exclude pneumonia in the right lower lobe.", {"Pneumonia": -1}),
    ("Pneumonia can not be excluded.", {"Pneumonia": -1}),
    ("The heart is not enlarged. There is a calcified nodule.",
     {"Cardiomegaly": 0, "Lung Lesion": 1}),
    ("Possible small effusion, no pneumothorax.", {"Pleural Effusion": -1, "Pneumothorax": 0}),
    ("Sternotomy wires are present. The lungs are clear.", {"Support Devices": 1, "No Finding": 1}),
    ("The heart is mildly enlarged.", {"Cardiomegaly": 1}),
    ("No pneumothorax and there is mild cardiomegaly.", {"Pneumothorax": 0, "Cardiomegaly": 1}),
    ("Pneumothorax is not seen.", {"Pneumothorax": 0, "No Finding": 1}),
    ("Lungs are free of infiltrate. Negative for acute fracture.",
     {"Lung Opacity": 0, "Fracture": 0, "No Finding": 1}),
    ("Right basilar opacity may represent atelectasis.", {"Lung Opacity": 1, "Atelectasis": -1}),
    ("Stable widened mediastinum; no pulmonary edema.", {"Enlarged Cardiomediastinum": 1, "Edema": 0}),
    ("Left pleural thickening without effusion.", {"Pleural Other": 1, "Pleural Effusion": 0}),
    ("Small pericardial effusion.", {"No Finding": 1}),  # pericardial, not pleural
    ("No acute, displaced rib fractures.", {"Fracture": 0, "No Finding": 1}),
    ("No effusion, stable cardiomegaly.", {"Pleural Effusion": 0, "Cardiomegaly": 1}),
    ("Interval removal of central line and enteric tube.", {"Support Devices": 0, "No Finding": 1}),
]


@pytest.mark.parametrize(("report", "expected"), HAND_LABELLED)
def test_labeler_matches_hand_labels(report, expected):
    labels = label_report(report)
    assert {k: v for k, v in labels.items() if v is not None} == expected


def test_labeler_covers_the_14_observations():
    assert len(OBSERVATIONS) == 14 and set(label_report("")) == set(OBSERVATIONS)


PREDICTIONS = [
    "Mild cardiomegaly. Small left pleural effusion.",
    "No acute disease. Lungs are clear.",
    "There is a right pneumothorax.",
]
REFERENCES = [
    "Cardiomegaly. No effusion.",
    "Possible pneumonia.",
    "Large right pneumothorax. Cardiomegaly.",
]


def test_clinical_metrics_by_hand():
    # Positives: pred {Cardio, Effusion}, {No Finding}, {Pneumothorax};
    #            ref  {Cardio}, {} (pneumonia uncertain), {Pneumothorax, Cardio}.
    # TP 2 (Cardio, Pneumothorax), FP 2 (Effusion, No Finding), FN 1 (Cardio in report 3).
    r = compute_metrics(
        ["chexpert_precision_micro", "chexpert_recall_micro", "chexpert_f1_micro", "chexpert_f1_macro",
         "hallucination_rate"],
        PREDICTIONS, REFERENCES, n_boot=200,
    )
    assert r["chexpert_precision_micro"].value == pytest.approx(2 / 4)
    assert r["chexpert_recall_micro"].value == pytest.approx(2 / 3)
    assert r["chexpert_f1_micro"].value == pytest.approx(4 / 7)
    # Per observation: Cardio F1 2/3, Effusion 0, No Finding 0, Pneumothorax 1; the rest never positive.
    assert r["chexpert_f1_macro"].value == pytest.approx((2 / 3 + 0 + 0 + 1) / 4)
    # Claimed findings (No Finding excluded): Cardio, Effusion, Pneumothorax; Effusion is unsupported.
    assert r["hallucination_rate"].value == pytest.approx(1 / 3)
    assert r["hallucination_rate"].per_sample == [0.5, 0.0, 0.0]
    assert not r["hallucination_rate"].higher_is_better
    assert r["chexpert_f1_micro"].per_sample == pytest.approx([2 / 3, 0.0, 2 / 3])
    for result in r.values():
        assert result.ci_low <= result.value <= result.ci_high


def test_uncertain_reference_supports_a_finding():
    r = compute_metrics(["hallucination_rate"], ["Right lower lobe pneumonia."], ["Possible pneumonia."])
    assert r["hallucination_rate"].value == 0.0
