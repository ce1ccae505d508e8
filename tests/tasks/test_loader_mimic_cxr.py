"""MIMIC-CXR is credentialed: the tests run on fixtures in its two real layouts (R2Gen and MIMIC-CXR-JPG)."""

import gzip
import json
import logging
from pathlib import Path

import datasets
import pytest
from task_layouts import MIMIC_REPORT, one_line_error, write_csv_gz, write_json

from harness.core.errors import DataError, HarnessError
from harness.tasks import get_task
from harness.tasks.mimic_cxr import report_sections

TASK = get_task("mimic_cxr")


def test_report_sections():
    sections = report_sections(MIMIC_REPORT)
    assert sections["FINDINGS"] == (
        "There is no focal consolidation, pleural effusion or pneumothorax. The cardiomediastinal silhouette is normal."
    )
    assert sections["IMPRESSION"] == "No acute cardiopulmonary process."
    assert sections["EXAMINATION"] == "CHEST (PA AND LAT)"
    assert "FINAL REPORT" not in sections


# --- R2Gen layout -----------------------------------------------------------------------------------

def test_r2gen_layout_is_detected(mimic_r2gen_dir):
    ds = TASK.load("test", mimic_r2gen_dir.parent)
    assert ds["id"] == ["dicom-2", "dicom-3", "dicom-4"]
    assert ds["study_id"] == ["50000002", "50000003", "50000004"]
    assert ds["answer"][0] == "Report number 2. No acute process."
    assert ds[0]["image"].size == (16, 12)
    assert TASK.sizes(mimic_r2gen_dir.parent) == {"train": 1, "validation": 1, "test": 3}


def test_r2gen_missing_field_and_wrong_split_key(mimic_r2gen_dir):
    data = json.loads((mimic_r2gen_dir / "annotation.json").read_text())
    del data["test"][2]["study_id"]
    write_json(mimic_r2gen_dir / "annotation.json", data)
    with pytest.raises(DataError) as exc:
        TASK.load("test", mimic_r2gen_dir.parent, strict=True)
    one_line_error(exc, "annotation.json", "record test[2] (id dicom-4)", "field 'study_id'")
    data["Test"] = data.pop("test")
    write_json(mimic_r2gen_dir / "annotation.json", data)
    with pytest.raises(DataError) as exc:
        TASK.load("test", mimic_r2gen_dir.parent)
    one_line_error(exc, "annotation.json", "no split key 'test'", "'Test'")


# --- MIMIC-CXR-JPG layout ---------------------------------------------------------------------------

def test_jpg_layout_findings_by_default_and_skips_counted(mimic_jpg_dir, caplog):
    with caplog.at_level(logging.INFO, logger="harness.tasks.mimic_cxr"):
        ds = TASK.load("test", mimic_jpg_dir.parent)
    assert ds["id"] == ["50000001", "50000002", "50000003", "50000004", "50000006"]
    assert ds["answer"][0].startswith("There is no focal consolidation") and ds["answer"][0].endswith("is normal.")
    assert "skipped 1 of 6 studies without a FINDINGS section" in caplog.text
    assert set(ds["answer_type"]) == {"report"}


def test_jpg_layout_prefers_the_pa_view(mimic_jpg_dir):
    ds = TASK.load("test", mimic_jpg_dir.parent, views="all")
    assert ds[0]["view_position"] == "PA" and ds[0]["image_path"].endswith("s50000001/pa-1.jpg")
    assert [len(v) for v in ds["images"]] == [2, 1, 1, 1, 1]
    (mimic_jpg_dir / "mimic-cxr-2.0.0-metadata.csv.gz").unlink()
    assert TASK.load("test", mimic_jpg_dir.parent)[0]["image_path"].endswith("lat-1.jpg")


@pytest.mark.parametrize(
    ("section", "count", "first"),
    [("impression", 6, "No acute cardiopulmonary process."), ("both", 5, "There is no focal")],
)
def test_jpg_layout_sections(mimic_jpg_dir, section, count, first):
    ds = TASK.load("test", mimic_jpg_dir.parent, section=section)
    assert len(ds) == count and ds["answer"][0].startswith(first)
    if section == "both":
        assert ds["answer"][0].endswith("is normal. No acute cardiopulmonary process.")


def test_jpg_splits_and_sizes(mimic_jpg_dir):
    assert TASK.load("validation", mimic_jpg_dir.parent)["id"] == ["50000007"]
    assert TASK.sizes(mimic_jpg_dir.parent) == {"train": 1, "validation": 1, "test": 6}


def test_sample_is_seeded_and_ordered(mimic_jpg_dir):
    full = TASK.load("test", mimic_jpg_dir.parent)["id"]
    a = TASK.load("test", mimic_jpg_dir.parent, sample=3, seed=1)["id"]
    b = TASK.load("test", mimic_jpg_dir.parent, sample=3, seed=1)["id"]
    others = {tuple(TASK.load("test", mimic_jpg_dir.parent, sample=3, seed=s)["id"]) for s in range(2, 8)}
    assert a == b and len(a) == 3 and set(a) <= set(full)
    assert a == [i for i in full if i in a]  # original order kept
    assert len(others | {tuple(a)}) > 1
    assert TASK.sizes(mimic_jpg_dir.parent, sample=3) == {"train": 1, "validation": 1, "test": 3}


def test_sample_checks_only_the_drawn_images(mimic_jpg_dir):
    drawn = TASK.load("test", mimic_jpg_dir.parent, sample=2, seed=0)["image"]
    kept = {str(p.filename) for p in drawn}
    full = TASK.load("test", mimic_jpg_dir.parent)
    paths = full.cast_column("image", datasets.Image(decode=False))["image"]
    other = next(r["path"] for r in paths if r["path"] not in kept)
    Path(other).unlink()
    with pytest.raises(DataError):
        TASK.load("test", mimic_jpg_dir.parent)
    assert len(TASK.load("test", mimic_jpg_dir.parent, sample=2, seed=0)) == 2


@pytest.mark.parametrize("bad", [0, -3, "200", True])
def test_bad_sample(mimic_jpg_dir, bad):
    with pytest.raises(HarnessError) as exc:
        TASK.load("test", mimic_jpg_dir.parent, sample=bad)
    one_line_error(exc, "sample")


def test_sample_larger_than_split(mimic_jpg_dir):
    with pytest.raises(HarnessError) as exc:
        TASK.load("test", mimic_jpg_dir.parent, sample=200)
    one_line_error(exc, "sample=200", "5 items", "'test'")


def test_jpg_missing_image(mimic_jpg_dir):
    next((mimic_jpg_dir / "files").rglob("ap-3.jpg")).unlink()
    with pytest.raises(DataError) as exc:
        TASK.load("test", mimic_jpg_dir.parent)
    one_line_error(exc, "mimic-cxr-2.0.0-split.csv.gz", "record study 50000003", "field 'dicom_id'", "ap-3.jpg")


def test_jpg_corrupt_image(mimic_jpg_dir):
    next((mimic_jpg_dir / "files").rglob("ap-4.jpg")).write_bytes(b"garbage")
    with pytest.raises(DataError) as exc:
        TASK.load("test", mimic_jpg_dir.parent, check_images="decode")
    one_line_error(exc, "record study 50000004", "cannot be decoded")


def test_jpg_missing_report(mimic_jpg_dir):
    next((mimic_jpg_dir / "files").rglob("s50000002.txt")).unlink()
    with pytest.raises(DataError) as exc:
        TASK.load("test", mimic_jpg_dir.parent)
    one_line_error(exc, "split.csv.gz", "record study 50000002", "s50000002.txt", "not found")


def test_jpg_missing_column_and_bad_split_value(mimic_jpg_dir):
    path = mimic_jpg_dir / "mimic-cxr-2.0.0-split.csv.gz"
    with gzip.open(path, "rt") as handle:
        rows = [line.strip().split(",") for line in handle]
    write_csv_gz(path, ["dicom_id", "study", "subject_id", "split"], rows[1:])
    with pytest.raises(DataError) as exc:
        TASK.load("test", mimic_jpg_dir.parent)
    one_line_error(exc, "split.csv.gz", "field 'study_id'", "columns found")
    rows[3][3] = "testing"
    write_csv_gz(path, rows[0], rows[1:])
    with pytest.raises(DataError) as exc:
        TASK.load("test", mimic_jpg_dir.parent)
    one_line_error(exc, "split.csv.gz", "record line 4", "field 'split'", "'testing'")


def test_malformed_gzip(mimic_jpg_dir):
    (mimic_jpg_dir / "mimic-cxr-2.0.0-split.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError) as exc:
        TASK.load("test", mimic_jpg_dir.parent)
    one_line_error(exc, "split.csv.gz", "cannot read")


def test_no_layout(tmp_path):
    (tmp_path / "mimic_cxr").mkdir()
    with pytest.raises(DataError) as exc:
        TASK.load("test", tmp_path)
    one_line_error(exc, "annotation.json", "mimic-cxr-2.0.0-split.csv.gz")
    assert TASK.sizes(tmp_path) is None
