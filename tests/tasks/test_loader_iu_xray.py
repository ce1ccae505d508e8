import json

import datasets
import pytest
from task_layouts import one_line_error, write_json

from harness.core.errors import DataError
from harness.tasks import get_task
from harness.tasks.base import DEFAULT_REPORT_INSTRUCTION

TASK = get_task("iu_xray")


# --- real files (annotations only: the public folder has no images) --------------------------------

def test_real_sizes(shared_data):
    assert TASK.sizes(shared_data) == {"train": 2069, "validation": 296, "test": 590}


def test_real_load_without_images_needs_check_images_none(shared_data):
    with pytest.raises(DataError) as exc:
        TASK.load("test", shared_data)
    one_line_error(exc, "annotation.json", "record test[0]", "field 'image_path'", "590 of 590", "check_images='none'")
    ds = TASK.load("test", shared_data, check_images="none")
    assert len(ds) == 590 and len(set(ds["id"])) == 590
    assert set(ds["answer_type"]) == {"report"} and set(ds["question"]) == {DEFAULT_REPORT_INSTRUCTION}
    assert all(report for report in ds["answer"])
    assert all(path.endswith("/0.png") for path in ds["image_path"])


def test_real_as_published_file_names_the_file_and_keys(shared_data):
    with pytest.raises(DataError) as exc:
        TASK.load("test", shared_data, annotation="annotation.as-published.json", check_images="none")
    one_line_error(exc, "annotation.as-published.json", "'test'", "keys found 'train', 'val', '    '")
    with pytest.raises(DataError):
        TASK.sizes(shared_data, annotation="annotation.as-published.json")


# --- fixture layout ---------------------------------------------------------------------------------

def test_first_view_by_default(iu_xray_dir):
    ds = TASK.load("test", iu_xray_dir.parent)
    assert ds["id"] == ["CXR3_IM-3", "CXR4_IM-4"]
    assert ds["answer"] == ["Normal chest. No effusion.", "Mild cardiomegaly."]
    assert ds["image_path"] == ["CXR3_IM-3/0.png", "CXR4_IM-4/0.png"]
    assert "images" not in ds.column_names
    assert ds[0]["image"].size == (16, 12)


def test_both_views(iu_xray_dir):
    ds = TASK.load("test", iu_xray_dir.parent, views="both")
    assert isinstance(ds.features["images"], datasets.List)
    assert [len(views) for views in ds["images"]] == [2, 2]
    raw = ds.cast_column("images", datasets.List(datasets.Image(decode=False)))[0]["images"]
    assert [v["path"].rsplit("/", 2)[-2:] for v in raw] == [["CXR3_IM-3", "0.png"], ["CXR3_IM-3", "1.png"]]


def test_split_names_map_to_r2gen_keys(iu_xray_dir):
    assert TASK.load("validation", iu_xray_dir.parent)["id"] == ["CXR2_IM-2"]
    assert TASK.sizes(iu_xray_dir.parent) == {"train": 1, "validation": 1, "test": 2}


def test_missing_second_view_only_matters_when_used(iu_xray_dir):
    (iu_xray_dir / "images" / "CXR4_IM-4" / "1.png").unlink()
    assert len(TASK.load("test", iu_xray_dir.parent)) == 2
    with pytest.raises(DataError) as exc:
        TASK.load("test", iu_xray_dir.parent, views="both")
    one_line_error(exc, "annotation.json", "record test[1] (id CXR4_IM-4)", "field 'image_path'", "1.png")


def test_corrupt_image(iu_xray_dir):
    (iu_xray_dir / "images" / "CXR3_IM-3" / "0.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError) as exc:
        TASK.load("test", iu_xray_dir.parent, check_images="decode")
    one_line_error(exc, "annotation.json", "record test[0]", "cannot be decoded")


def test_malformed_json(iu_xray_dir):
    (iu_xray_dir / "annotation.json").write_text('{"train": [}', encoding="utf-8")
    with pytest.raises(DataError) as exc:
        TASK.load("test", iu_xray_dir.parent)
    one_line_error(exc, "annotation.json", "malformed JSON")


@pytest.mark.parametrize("field", ["id", "report", "image_path"])
def test_missing_field(iu_xray_dir, field):
    data = json.loads((iu_xray_dir / "annotation.json").read_text())
    del data["test"][1][field]
    write_json(iu_xray_dir / "annotation.json", data)
    with pytest.raises(DataError) as exc:
        TASK.load("test", iu_xray_dir.parent, strict=True)
    one_line_error(exc, "annotation.json", "record test[1]", f"field '{field}'")
    # without strict the record is skipped and counted
    assert len(TASK.load("test", iu_xray_dir.parent, check_images="none")) == len(data["test"]) - 1
    assert TASK.size_report(iu_xray_dir.parent)[1] == {"test": f"1 skipped: missing {field}"}


def test_empty_image_list(iu_xray_dir):
    data = json.loads((iu_xray_dir / "annotation.json").read_text())
    data["test"][0]["image_path"] = []
    write_json(iu_xray_dir / "annotation.json", data)
    with pytest.raises(DataError) as exc:
        TASK.load("test", iu_xray_dir.parent, strict=True)
    one_line_error(exc, "record test[0] (id CXR3_IM-3)", "field 'image_path'", "non-empty list")


def test_wrong_split_key(iu_xray_dir):
    data = json.loads((iu_xray_dir / "annotation.json").read_text())
    data["validation"] = data.pop("val")
    write_json(iu_xray_dir / "annotation.json", data)
    with pytest.raises(DataError) as exc:
        TASK.load("validation", iu_xray_dir.parent)
    one_line_error(exc, "annotation.json", "no split key 'val'", "'validation'")
    assert len(TASK.load("test", iu_xray_dir.parent)) == 2
