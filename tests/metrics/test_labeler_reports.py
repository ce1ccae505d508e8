"""The labeler against 300 hand-labelled whole IU-Xray reports (tests/data/labeler_validation/iu_xray_reports.jsonl).

The held-out floor is the one docs/metrics.md states ("Validating the labeler"): the held-out part was scored
once, after the rules were written from the tuning part.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from harness.core.errors import DataError
from harness.findings.labeler import label_report
from harness.metrics.labeler_validation import MIN_POSITIVES, read_report_set, score_reports

REPO = Path(__file__).resolve().parents[2]
REPORTS = REPO / "tests" / "data" / "labeler_validation" / "iu_xray_reports.jsonl"
HELDOUT_FLOOR = 0.88  # docs/metrics.md; the bar for reports the labeler was not tuned on


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"_labeler_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows():
    return read_report_set(REPORTS)


def test_the_set_has_a_large_held_out_part_of_distinct_reports(rows):
    parts = Counter(r["split"] for r in rows)
    assert parts["heldout"] >= 150 and parts["tune"] >= 150
    assert len({r["report"] for r in rows}) == len(rows) == len({r["id"] for r in rows})


def test_held_out_macro_f1_is_at_least_the_documented_floor(rows):
    scores = score_reports(rows, "heldout", n_boot=200)
    # the macro average is over pathologies with enough positives, never over Support Devices or one pathology
    assert len(scores.macro_observations) >= 5 and "Support Devices" not in scores.macro_observations
    assert all(scores.gold_positive[o] >= MIN_POSITIVES for o in scores.macro_observations)
    assert scores.macro_f1 >= HELDOUT_FLOOR, scores.macro_f1
    assert scores.ci[0] <= scores.macro_f1 <= scores.ci[1]


def test_the_script_prints_both_parts_and_the_sentence_check(capsys):
    validate = _script("validate_labeler")
    assert validate.main([]) == 0
    out = capsys.readouterr().out
    assert "part tune: 150 reports" in out and "part heldout: 150 reports" in out
    heldout = out.split("part heldout:")[1]
    figure = float(heldout.split("positives: ")[1].split()[0])
    assert figure >= HELDOUT_FLOOR
    assert validate.main(["--sentences", "--no-errors"]) == 0
    assert "mention accuracy" in capsys.readouterr().out


def test_uncertain_counts_as_positive_only_when_asked():
    rows = [{"id": "a", "split": "tune", "report": "Possible left basilar atelectasis.",
             "labels": {"Atelectasis": "uncertain"}}]
    strict = score_reports(rows, "tune", n_boot=0)
    lenient = score_reports(rows, "tune", uncertain_positive=True, n_boot=0)
    assert strict.counts["Atelectasis"] == (0, 0, 0)  # neither side positive
    assert lenient.counts["Atelectasis"] == (1, 0, 0)


def test_a_pathology_with_few_positives_stays_out_of_the_macro_average():
    rows = [{"id": str(i), "split": "tune", "report": "Mild cardiomegaly.", "labels": {"Cardiomegaly": "positive"}}
            for i in range(MIN_POSITIVES)]
    rows.append({"id": "x", "split": "tune", "report": "Small left pleural effusion.", "labels": {}})
    scores = score_reports(rows, "tune", n_boot=0)
    assert scores.macro_observations == ("Cardiomegaly",)
    assert scores.macro_f1 == 1.0  # the effusion false positive is reported, not averaged in
    assert scores.counts["Pleural Effusion"] == (0, 1, 0)


def test_a_bad_report_line_is_a_one_line_error(tmp_path):
    path = tmp_path / "reports.jsonl"
    path.write_text(json.dumps({"id": "a", "split": "dev", "report": "x", "labels": {}}) + "\n")
    with pytest.raises(DataError, match="line 1.*split"):
        read_report_set(path)
    path.write_text(json.dumps({"id": "a", "split": "tune", "report": "x", "labels": {"Effusion": "positive"}}) + "\n")
    with pytest.raises(DataError, match="line 1.*'Effusion'"):
        read_report_set(path)


@pytest.mark.parametrize(
    ("report", "expected"),
    [  # the error families, in the words of real IU-Xray reports
        ("There is a XXXX 7 XXXX nodular density at the left lung base.", {"Lung Opacity": 1, "Lung Lesion": None}),
        ("There is scarring or subsegmental atelectasis at the right lung base.", {"Atelectasis": 1}),
        ("XXXX opacities in the right lower lung representing atelectasis versus scarring.", {"Atelectasis": 1}),
        ("Streaky opacities in the lung bases may represent atelectasis or scarring.", {"Atelectasis": -1}),
        ("Patchy opacity which may be secondary to atelectasis and/or possible infiltrate.", {"Atelectasis": -1}),
        ("Right lower lobe atelectasis or pneumonia.", {"Pneumonia": -1}),
        ("Mild central vascular prominence.", {"Edema": 1}),
        ("Central vascular markings are mildly prominent.", {"Edema": 1}),
        ("Findings suggest early failure.", {"Edema": -1}),
        ("Pulmonary vascularity is not increased.", {"Edema": 0}),
        ("There is prominence of the pulmonary arteries, right greater than left.", {"Edema": None}),
        ("Normal pulmonary vascularity.", {"Edema": None}),
        ("The appearance is concerning for a neoplastic process.", {"Lung Lesion": -1}),
        ("There is a 9 mm right lower lobe pulmonary nodule, not seen on prior exams.", {"Lung Lesion": 1}),
        ("No nodule is seen.", {"Lung Lesion": 0}),
        ("There are posttraumatic deformities of the right posterior ribs.", {"Fracture": 1}),
        ("There is a stable closure device projected over the heart.", {"Support Devices": 1}),
        ("There is opacity at the base of the mediastinum which is XXXX a hiatal hernia.", {"Lung Opacity": None}),
        ("There is opacity in the left base and there is a hiatal hernia.", {"Lung Opacity": 1}),
        ("XXXX density is seen within the right lower lobe XXXX representing hemorrhage.", {"Lung Opacity": 1}),
        ("There is a calcified density in the left mid lung.", {"Lung Opacity": None}),
        ("There has been interval increase in size of the cardiac silhouette.", {"Cardiomegaly": 1}),
        ("The lateral view limits evaluation for an effusion.", {"Pleural Effusion": None}),
    ],
)
def test_report_rules(report, expected):
    labels = label_report(report)
    assert {o: labels[o] for o in expected} == expected


def test_the_draw_is_reproducible_and_never_consults_the_labeler(monkeypatch):
    sampler = _script("sample_labeler_reports")
    annotation = {split: [{"id": f"{split}{i}", "report": f"Report {split} {i}. " + "word " * (i % 7),
                           "image_path": [], "split": split} for i in range(20)]
                  for split in ("train", "val", "test")}
    annotation["test"].append(dict(annotation["train"][0], id="dup"))  # a repeated text is drawn once
    import harness.findings.labeler as cx

    monkeypatch.setattr(cx, "label_report", lambda *_: pytest.fail("the draw ran the labeler"))
    first = sampler.sample(annotation, n_long=10, n_short=10, heldout=8)
    assert first == sampler.sample(annotation, n_long=10, n_short=10, heldout=8)
    assert Counter(r["split"] for r in first) == {"heldout": 8, "tune": 12}
    assert len({r["report"] for r in first}) == 20 and "dup" not in {r["id"] for r in first}


def test_the_committed_set_is_the_scripts_draw(shared_data):
    annotation = shared_data / "iu_xray" / "annotation.json"
    if not annotation.is_file():
        pytest.skip(f"{annotation} not found")
    sampler = _script("sample_labeler_reports")
    drawn = sampler.sample(json.loads(annotation.read_text(encoding="utf-8")))
    committed = read_report_set(REPORTS)
    assert [(r["id"], r["split"], r["report"]) for r in drawn] == [(r["id"], r["split"], r["report"]) for r in committed]
