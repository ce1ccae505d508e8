"""SLAKE is not on this machine: every test runs on a fixture in the layout of the SLAKE 1.0 release."""

import json
from collections import Counter

import pytest
from task_layouts import one_line_error, write_json

from harness.errors import DataError, HarnessError
from harness.tasks import get_task

TASK = get_task("slake")


def test_english_by_default_with_types_and_metadata(slake_dir):
    ds = TASK.load("test", slake_dir.parent)
    assert ds["id"] == ["100", "101", "103"]
    assert Counter(ds["answer_type"]) == {"closed": 1, "open": 2}
    row = ds[1]
    assert (row["question"], row["answer"]) == ("Where is the abnormality?", "Left Lung")
    assert (row["modality"], row["location"], row["content_type"], row["base_type"]) == ("CT", "Lung", "Abnormality", "vqa")
    assert row["image_path"] == "xmlab1/source.jpg" and row["image"].size == (16, 12)


@pytest.mark.parametrize(("language", "ids"), [("zh", ["102"]), ("all", ["100", "101", "102", "103"])])
def test_language_option(slake_dir, language, ids):
    assert TASK.load("test", slake_dir.parent, language=language)["id"] == ids


def test_mask_and_boxes_beside_the_image(slake_dir):
    ds = TASK.load("test", slake_dir.parent)
    with_lesion, without = ds[0], ds[2]
    assert with_lesion["mask"].size == (16, 12) and with_lesion["mask"].getpixel((0, 0)) == 255
    assert json.loads(with_lesion["boxes"]) == [
        {"label": "Lung Cancer", "bbox": [3, 4, 5, 6]},
        {"label": "Nodule", "bbox": [1, 1, 2, 2]},
    ]
    assert without["mask"] is None and without["boxes"] == "[]"


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
        TASK.load("test", slake_dir.parent)
    one_line_error(exc, "test.json", "record 3", f"field '{field}'")


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
