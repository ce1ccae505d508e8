"""SLAKE is not on this machine: every test runs on a fixture in the layout of the SLAKE 1.0 release."""

import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image
from task_layouts import SLAKE_FINDING_BOX, one_line_error, write_json

from harness.core.errors import DataError, HarnessError
from harness.methods import PairContext
from harness.tasks import get_task
from harness.tasks.slake import FINDING_LABELS, is_finding
from mmedpo.curate import curate
from mmedpo.localize import get_localizer

TASK = get_task("slake")


def test_english_by_default_with_types_and_metadata(slake_dir):
    ds = TASK.load("test", slake_dir.parent)
    assert ds["id"] == ["100", "101", "103"]
    assert Counter(ds["answer_type"]) == {"closed": 1, "open": 2}
    row = ds[1]
    assert (row["question"], row["answer"]) == ("Where is the abnormality?", "Liver")
    assert (row["modality"], row["location"], row["content_type"], row["base_type"]) == ("CT", "Lung", "Abnormality", "vqa")
    assert row["image_path"] == "xmlab1/source.jpg" and row["image"].size == (32, 24)


@pytest.mark.parametrize(("language", "ids"), [("zh", ["102"]), ("all", ["100", "101", "102", "103"])])
def test_language_option(slake_dir, language, ids):
    assert TASK.load("test", slake_dir.parent, language=language)["id"] == ids


def test_boxes_flag_findings_and_organ_masks_are_not_loaded(slake_dir):
    ds = TASK.load("test", slake_dir.parent)
    assert "mask" not in ds.column_names  # mask.png is an organ label map, not a lesion mask
    with_lesion, organs_only = ds[0], ds[2]
    assert json.loads(with_lesion["boxes"]) == [
        {"label": "Liver", "bbox": [0, 0, 16, 24], "finding": False},
        {"label": "Spleen", "bbox": [20, 12, 10, 10], "finding": False},
        {"label": "Liver Cancer", "bbox": SLAKE_FINDING_BOX, "finding": True},
        {"label": "Spinal Cord", "bbox": [14, 18, 4, 6], "finding": False},
    ]
    assert not any(box["finding"] for box in json.loads(organs_only["boxes"]))
    assert TASK.load("train", slake_dir.parent)[0]["boxes"] == "[]"


def test_finding_labels_are_findings_and_organs_are_not():
    assert all(is_finding(label) for label in FINDING_LABELS)
    assert is_finding("brain tumour") and is_finding("Kidney Cancer")
    organs = ["Liver", "Spleen", "Left Kidney", "Right Kidney", "Heart", "Left Lung", "Right Lung", "Small Bowel",
              "Large Bowel", "Spinal Cord", "Brain", "Brainstem", "Colon", "Rectum", "Bladder", "Esophagus",
              "Trachea", "Stomach", "Duodenum", "Pancreas", "Eyes", "Optic Nerve", "Temporal Lobes", "Parotid"]
    assert not any(is_finding(label) for label in organs)


def test_ground_truth_localizes_the_disease_box_only(slake_dir):
    ds = TASK.load("test", slake_dir.parent)
    found = get_localizer("ground-truth").localize(ds[0])
    x, y, w, h = SLAKE_FINDING_BOX
    expected = np.zeros((24, 32), dtype=bool)
    expected[y:y + h, x:x + w] = True
    assert np.array_equal(found.map >= 0.5, expected)
    assert 0.0 < found.confidence < 1.0  # a dark tumour in a bright liver: visible, and smaller than 5%
    assert get_localizer("ground-truth").localize(ds[2]) is None  # organ boxes and an organ mask: no lesion


def test_visual_pairs_noise_inside_disease_boxes_and_skip_organ_only_images(slake_dir, tmp_path):
    ds = TASK.load("test", slake_dir.parent)
    result = curate(PairContext(task=TASK, samples=ds, model=None, output_dir=tmp_path, seed=0,
                                options={"text_pairs": False}))
    assert sorted(p.id for p in result.pairs) == ["100-visual", "101-visual"]
    assert result.manifest["counts"]["skipped"] == 1  # qid 103, on an image with organ boxes only
    x, y, w, h = SLAKE_FINDING_BOX
    inside = np.zeros((24, 32), dtype=bool)
    inside[y:y + h, x:x + w] = True
    for pair in result.pairs:
        chosen = np.asarray(Image.open(result.image_root / pair.image).convert("RGB"), dtype=int)
        noised = np.asarray(Image.open(result.image_root / pair.rejected_image).convert("RGB"), dtype=int)
        changed = (chosen != noised).any(axis=-1)
        assert changed.any() and not changed[~inside].any()
        assert changed[inside].mean() > 0.9


def test_splits_and_sizes(slake_dir):
    assert TASK.splits == ("train", "validation", "test")
    assert TASK.sizes(slake_dir.parent) == {"train": 1, "validation": 1, "test": 3}
    assert TASK.sizes(slake_dir.parent, language="all") == {"train": 2, "validation": 1, "test": 4}
    assert len(TASK.load("validation", slake_dir.parent)) == 1
    assert len(TASK.load("train", slake_dir.parent, language="all")) == 2


def test_sizes_none_when_a_split_file_is_missing(slake_dir):
    (slake_dir / "validate.json").unlink()
    assert TASK.sizes(slake_dir.parent) is None


def test_bad_language(slake_dir):
    with pytest.raises(HarnessError) as exc:
        TASK.load("test", slake_dir.parent, language="fr")
    one_line_error(exc, "language='fr'", "'en'")


def test_missing_image(slake_dir):
    (slake_dir / "imgs" / "xmlab2" / "source.jpg").unlink()
    with pytest.raises(DataError) as exc:
        TASK.load("test", slake_dir.parent)
    one_line_error(exc, "test.json", "record 3 (qid 103)", "field 'img_name'", "xmlab2", "not found")
    assert TASK.load("test", slake_dir.parent, language="zh", check_images="none")["id"] == ["102"]


def test_corrupt_image(slake_dir):
    (slake_dir / "imgs" / "xmlab1" / "source.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DataError) as exc:
        TASK.load("test", slake_dir.parent, check_images="decode")
    one_line_error(exc, "test.json", "record 0 (qid 100)", "field 'img_name'", "cannot be decoded")


def test_malformed_json(slake_dir):
    (slake_dir / "validate.json").write_text("[{]", encoding="utf-8")
    with pytest.raises(DataError) as exc:
        TASK.load("validation", slake_dir.parent)
    one_line_error(exc, "validate.json", "malformed JSON")


@pytest.mark.parametrize("field", ["img_name", "question", "answer", "answer_type", "qid"])
def test_missing_field(slake_dir, field):
    records = json.loads((slake_dir / "test.json").read_text(encoding="utf-8"))
    del records[3][field]
    write_json(slake_dir / "test.json", records)
    with pytest.raises(DataError) as exc:
        TASK.load("test", slake_dir.parent, strict=True)
    one_line_error(exc, "test.json", "record 3", f"field '{field}'")
    # without strict the record is skipped and counted
    assert TASK.load("test", slake_dir.parent)["id"] == ["100", "101"]
    assert TASK.size_report(slake_dir.parent)[1] == {"test": f"1 skipped: missing {field}"}


def test_wrong_language_key_leaves_no_records(slake_dir):
    records = json.loads((slake_dir / "test.json").read_text(encoding="utf-8"))
    for record in records:
        record["q_lang"] = "english"
    write_json(slake_dir / "test.json", records)
    with pytest.raises(DataError) as exc:
        TASK.load("test", slake_dir.parent)
    one_line_error(exc, "test.json", "field 'q_lang'", "'en'")


def test_malformed_detection_file(slake_dir):
    write_json(slake_dir / "imgs" / "xmlab1" / "detection.json", [{"Lung Cancer": [1, 2]}])
    with pytest.raises(DataError) as exc:
        TASK.load("test", slake_dir.parent)
    one_line_error(exc, "detection.json", "record 0", "field 'Lung Cancer'", "[x, y, w, h]")


def test_duplicate_qid(slake_dir):
    records = json.loads((slake_dir / "test.json").read_text(encoding="utf-8"))
    records[1]["qid"] = 100
    write_json(slake_dir / "test.json", records)
    with pytest.raises(DataError) as exc:
        TASK.load("test", slake_dir.parent)
    one_line_error(exc, "test.json", "record 100", "field 'id'", "duplicate")
