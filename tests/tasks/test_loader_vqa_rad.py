import json
from collections import Counter

import datasets
import pytest
from task_layouts import one_line_error, write_json

from harness.core.errors import DataError, HarnessError
from harness.tasks import get_task
from harness.tasks._loading import verify_images

TASK = get_task("vqa_rad")


def _items(ds):
    return Counter(zip(ds["image_path"], ds["question"], ds["answer"], ds["answer_type"]))


# --- real files -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_test(shared_data):
    return TASK.load("test", shared_data)


def test_real_test_split_has_the_published_counts(real_test):
    assert len(real_test) == 451
    assert Counter(real_test["answer_type"]) == {"closed": 272, "open": 179}
    assert len(set(real_test["image_path"])) <= 315


def test_real_osf_file_gives_the_same_test_items(shared_data, real_test):
    osf = TASK.load("test", shared_data, source="osf")
    assert _items(osf) == _items(real_test)
    assert Counter(osf["phrase_type"]) == Counter(real_test["phrase_type"]) == {"freeform": 308, "para": 143}


def test_real_quirks_are_normalised(shared_data):
    train = TASK.load("train", shared_data)
    osf_train = TASK.load("train", shared_data, source="osf")
    assert len(train) == 3064 and len(osf_train) == 1797
    # trainset.json has two "CLOSED " answer types; the OSF file integer answers and one string qid.
    assert set(train["answer_type"]) == set(osf_train["answer_type"]) == {"closed", "open"}
    assert all(isinstance(a, str) and a for a in osf_train["answer"])
    assert "12" in osf_train["answer"] and "0" in osf_train["id"]


def test_real_sizes_from_the_json_files(shared_data):
    assert TASK.sizes(shared_data) == {"train": 3064, "test": 451}
    assert TASK.sizes(shared_data, source="osf") == {"train": 1797, "test": 451}


def test_real_image_is_lazily_decoded_from_its_file(real_test, shared_data):
    assert isinstance(real_test.features["image"], datasets.Image)
    raw = real_test.cast_column("image", datasets.Image(decode=False))[0]["image"]
    assert raw["bytes"] is None and raw["path"].endswith(real_test[0]["image_path"])
    assert real_test[0]["image"].size[0] > 0


# --- fixture layout ---------------------------------------------------------------------------------

def test_fixture_columns_and_types(vqa_rad_dir):
    ds = TASK.load("test", vqa_rad_dir.parent)
    row = ds[2]
    assert ds.column_names[:5] == ["id", "image", "question", "answer", "answer_type"]
    assert {"image_organ", "question_type", "phrase_type"} <= set(ds.column_names)
    assert row["id"] == "13" and row["answer"] == "2" and row["answer_type"] == "open"
    assert row["image"].size == (16, 12)


def test_fixture_sources_agree_and_osf_train_is_the_rest(vqa_rad_dir):
    assert _items(TASK.load("test", vqa_rad_dir.parent, source="osf")) == _items(TASK.load("test", vqa_rad_dir.parent))
    osf_train = TASK.load("train", vqa_rad_dir.parent, source="osf")
    assert osf_train["id"] == ["0"] and osf_train["answer_type"] == ["closed"]


def test_per_task_folder_override(vqa_rad_dir, monkeypatch, tmp_path):
    moved = tmp_path / "elsewhere"
    vqa_rad_dir.rename(moved)
    monkeypatch.setenv("HARNESS_DATA_VQA_RAD", str(moved))
    assert len(TASK.load("test")) == 3
    assert TASK.sizes() == {"train": 2, "test": 3}


def test_data_root_from_environment(vqa_rad_dir, monkeypatch):
    monkeypatch.delenv("HARNESS_DATA_VQA_RAD", raising=False)
    monkeypatch.setenv("HARNESS_DATA", str(vqa_rad_dir.parent))
    assert len(TASK.load("train")) == 2


def test_sizes_is_none_without_data(tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_DATA", raising=False)
    monkeypatch.delenv("HARNESS_DATA_VQA_RAD", raising=False)
    assert TASK.sizes() is None
    assert TASK.sizes(tmp_path) is None


def test_unknown_option_and_split_are_one_line_errors(vqa_rad_dir):
    with pytest.raises(HarnessError) as exc:
        TASK.load("test", vqa_rad_dir.parent, sorce="osf")
    one_line_error(exc, "sorce", "did you mean 'source'")
    with pytest.raises(HarnessError) as exc:
        TASK.load("validation", vqa_rad_dir.parent)
    one_line_error(exc, "validation")


# --- bad input --------------------------------------------------------------------------------------

def test_missing_image_names_file_record_and_field(vqa_rad_dir):
    (vqa_rad_dir / "images" / "synpic2.jpg").unlink()
    with pytest.raises(DataError) as exc:
        TASK.load("test", vqa_rad_dir.parent)
    one_line_error(exc, "testset.json", "record 2 (qid 13)", "field 'image_name'", "synpic2.jpg", "not found")
    assert len(TASK.load("test", vqa_rad_dir.parent, check_images="none")) == 3
    assert len(TASK.load("test", vqa_rad_dir.parent, check_images=False)) == 3


def test_corrupt_image_is_caught_by_the_decode_check(vqa_rad_dir):
    (vqa_rad_dir / "images" / "synpic2.jpg").write_bytes(b"not a jpeg")
    ds = TASK.load("test", vqa_rad_dir.parent)  # existence check passes
    with pytest.raises(DataError) as exc:
        TASK.load("test", vqa_rad_dir.parent, check_images="decode")
    one_line_error(exc, "testset.json", "qid 13", "field 'image_name'", "cannot be decoded")
    verify_images(ds.select([0, 1]))  # only the rows used are decoded: these are fine
    with pytest.raises(DataError) as exc:
        verify_images(ds.select([2]), source="testset.json")
    one_line_error(exc, "record 13", "field 'image'", "synpic2.jpg")


def test_malformed_json(vqa_rad_dir):
    (vqa_rad_dir / "testset.json").write_text('[{"qid": 1,', encoding="utf-8")
    with pytest.raises(DataError) as exc:
        TASK.load("test", vqa_rad_dir.parent)
    one_line_error(exc, "testset.json", "malformed JSON", "line 1")


@pytest.mark.parametrize("field", ["question", "answer", "answer_type", "image_name", "qid"])
def test_missing_field(vqa_rad_dir, field):
    records = json.loads((vqa_rad_dir / "testset.json").read_text())
    del records[1][field]
    write_json(vqa_rad_dir / "testset.json", records)
    with pytest.raises(DataError) as exc:
        TASK.load("test", vqa_rad_dir.parent, strict=True)
    one_line_error(exc, "testset.json", "record 1", f"field '{field}'", "missing field")
    # without strict the record is skipped and counted
    assert len(TASK.load("test", vqa_rad_dir.parent)) == len(records) - 1
    assert TASK.size_report(vqa_rad_dir.parent)[1] == {"test": f"1 skipped: missing {field}"}


def test_bad_answer_type_and_wrong_top_level(vqa_rad_dir):
    records = json.loads((vqa_rad_dir / "testset.json").read_text())
    records[0]["answer_type"] = "YESNO"
    write_json(vqa_rad_dir / "testset.json", records)
    with pytest.raises(DataError) as exc:
        TASK.load("test", vqa_rad_dir.parent, strict=True)
    one_line_error(exc, "record 0 (qid 11)", "field 'answer_type'", "'YESNO'")
    write_json(vqa_rad_dir / "testset.json", {"test": records})
    with pytest.raises(DataError) as exc:
        TASK.load("test", vqa_rad_dir.parent)
    one_line_error(exc, "testset.json", "expected a JSON list", "object")


def test_osf_record_without_phrase_type(vqa_rad_dir):
    path = vqa_rad_dir / "VQA_RAD Dataset Public.json"
    records = json.loads(path.read_text())
    del records[2]["phrase_type"]
    write_json(path, records)
    with pytest.raises(DataError) as exc:
        TASK.load("test", vqa_rad_dir.parent, source="osf", strict=True)
    one_line_error(exc, "VQA_RAD Dataset Public.json", "record 2", "field 'phrase_type'")
