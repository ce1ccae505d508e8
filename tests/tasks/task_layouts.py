"""Small data folders in the exact on-disk layouts of each dataset, written under tmp_path (fixtures in conftest).

Each builder returns the task folder; tests then damage one file to check the one-line errors.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, size: tuple[int, int] = (16, 12), value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, value).save(path)
    return path


def write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    return path


def one_line_error(exc_info, *parts: str) -> str:
    """The error message, checked to be a single line that mentions every part."""
    message = str(exc_info.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


def vqa_rad_record(qid, image, question, answer, answer_type="CLOSED", phrase="freeform", **extra) -> dict:
    return {
        "qid": qid, "image_name": image, "image_organ": "CHEST", "answer": answer, "answer_type": answer_type,
        "question_type": "PRES", "question": question, "phrase_type": phrase, **extra,
    }


@pytest.fixture
def vqa_rad_dir(tmp_path) -> Path:
    """testset.json / trainset.json / the OSF file with the real quirks, and their images."""
    root = tmp_path / "vqa_rad"
    for name in ("synpic1.jpg", "synpic2.jpg", "synpic3.jpg"):
        write_image(root / "images" / name)
    test = [
        vqa_rad_record(11, "synpic1.jpg", "Is there a mass?", "yes"),
        vqa_rad_record(12, "synpic1.jpg", "Where is the mass?", "left lung", "OPEN", "para"),
        vqa_rad_record(13, "synpic2.jpg", "How many lesions?", 2, "OPEN"),
    ]
    train = [
        vqa_rad_record(1, "synpic3.jpg", "Is this infectious?", "Maybe", "CLOSED "),
        vqa_rad_record(2, "synpic3.jpg", "Is it normal?", "No", "CLOSED", "frame"),
    ]
    write_json(root / "testset.json", test)
    write_json(root / "trainset.json", train)
    osf = [
        {**vqa_rad_record("0", "synpic3.jpg", "Is this infectious?", "Maybe", "CLOSED "), "evaluation": "not evaluated"},
        vqa_rad_record(10, "synpic1.jpg", "Is there a mass?", "yes", phrase="test_freeform"),
        vqa_rad_record(11, "synpic1.jpg", "Where is the mass?", "left lung", "OPEN", "test_para"),
        vqa_rad_record(12, "synpic2.jpg", "How many lesions?", 2, "OPEN", "test_freeform"),
    ]
    write_json(root / "VQA_RAD Dataset Public.json", osf)
    return root


def slake_record(qid, img_id, question, answer, lang="en", answer_type="CLOSED") -> dict:
    return {
        "img_id": img_id, "img_name": f"xmlab{img_id}/source.jpg", "question": question, "answer": answer,
        "q_lang": lang, "location": "Lung", "modality": "CT", "answer_type": answer_type,
        "base_type": "vqa", "content_type": "Abnormality", "triple": ["vhead", "_", "_"], "qid": qid,
    }


# SLAKE's annotations as the release ships them: mask.png is an organ label map (one gray level per organ,
# covering most of the body), detection.json mixes organ boxes with finding boxes.
SLAKE_ORGAN_BOXES = [{"Liver": [0, 0, 16, 24]}, {"Spleen": [20, 12, 10, 10]}, {"Spinal Cord": [14, 18, 4, 6]}]
SLAKE_FINDING_BOX = [4, 6, 6, 5]  # x, y, w, h of "Liver Cancer", inside the liver


def write_organ_mask(path: Path, size: tuple[int, int] = (32, 24)) -> Path:
    labels = np.zeros((size[1], size[0]), dtype=np.uint8)
    labels[:, :16] = 60  # liver
    labels[12:22, 20:30] = 120  # spleen
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(labels).save(path)
    return path


@pytest.fixture
def slake_dir(tmp_path) -> Path:
    """train.json / validate.json / test.json; imgs/xmlabN/ with source.jpg, and mask.png + detection.json:
    xmlab1 has organ boxes and a Liver Cancer box, xmlab2 organ boxes only, xmlab3 no annotation."""
    root = tmp_path / "slake"
    for img_id in (1, 2, 3):
        write_image(root / "imgs" / f"xmlab{img_id}" / "source.jpg", size=(32, 24))
    for img_id in (1, 2):
        write_organ_mask(root / "imgs" / f"xmlab{img_id}" / "mask.png")
    ct = np.full((24, 32), 40, dtype=np.uint8)
    ct[:, :16] = 140  # the liver
    x, y, w, h = SLAKE_FINDING_BOX
    ct[y:y + h, x:x + w] = 80  # a hypodense tumour
    Image.fromarray(ct).save(root / "imgs" / "xmlab1" / "source.jpg")
    write_json(root / "imgs" / "xmlab1" / "detection.json",
               [*SLAKE_ORGAN_BOXES[:2], {"Liver Cancer": SLAKE_FINDING_BOX}, SLAKE_ORGAN_BOXES[2]])
    write_json(root / "imgs" / "xmlab2" / "detection.json", SLAKE_ORGAN_BOXES)
    test = [
        slake_record(100, 1, "Does the picture contain liver?", "Yes"),
        slake_record(101, 1, "Where is the abnormality?", "Liver", answer_type="OPEN"),
        slake_record(102, 2, "图片中包含肺吗?", "是", lang="zh"),
        slake_record(103, 2, "What modality is used?", "CT", answer_type="OPEN"),
    ]
    write_json(root / "test.json", test)
    write_json(root / "train.json", [slake_record(1, 3, "Is this a CT?", "Yes"), slake_record(2, 3, "是CT吗?", "是", lang="zh")])
    write_json(root / "validate.json", [slake_record(50, 3, "Which organ?", "Lung", answer_type="OPEN")])
    return root


def r2gen_record(rid, split, report, views=2, **extra) -> dict:
    return {"id": rid, "report": report, "image_path": [f"{rid}/{v}.png" for v in range(views)], "split": split, **extra}


@pytest.fixture
def iu_xray_dir(tmp_path) -> Path:
    """annotation.json in the R2Gen layout with both views of each study as images/<id>/{0,1}.png."""
    root = tmp_path / "iu_xray"
    annotation = {
        "train": [r2gen_record("CXR1_IM-1", "train", "The heart is normal in size.")],
        "val": [r2gen_record("CXR2_IM-2", "val", "No pneumothorax.")],
        "test": [
            r2gen_record("CXR3_IM-3", "test", "Normal chest. No effusion."),
            r2gen_record("CXR4_IM-4", "test", "Mild cardiomegaly."),
        ],
    }
    write_json(root / "annotation.json", annotation)
    for records in annotation.values():
        for record in records:
            for image in record["image_path"]:
                write_image(root / "images" / image)
    return root


@pytest.fixture
def mimic_r2gen_dir(tmp_path) -> Path:
    """R2Gen's MIMIC annotation.json (one image per study) with images/<image_path>."""
    root = tmp_path / "mimic_cxr"
    records = {"train": [], "val": [], "test": []}
    for n, split in enumerate(["train", "val", "test", "test", "test"]):
        subject, study, dicom = f"1000000{n}", f"5000000{n}", f"dicom-{n}"
        records[split].append({
            "id": dicom, "study_id": int(study), "subject_id": int(subject),
            "report": f"Report number {n}. No acute process.",
            "image_path": [f"p10/p{subject}/s{study}/{dicom}.jpg"], "split": split,
        })
        write_image(root / "images" / f"p10/p{subject}/s{study}/{dicom}.jpg")
    write_json(root / "annotation.json", records)
    return root


MIMIC_REPORT = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___F with cough

 COMPARISON:  None.

 FINDINGS:

 There is no focal consolidation, pleural effusion or pneumothorax.  The
 cardiomediastinal silhouette is normal.

 IMPRESSION:

 No acute cardiopulmonary process.
"""

MIMIC_REPORT_NO_FINDINGS = """                                 FINAL REPORT
 INDICATION:  Fever.

 IMPRESSION:  Low lung volumes. No pneumonia.
"""


def write_csv_gz(path: Path, header: list[str], rows: list[list]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def mimic_jpg_dir(tmp_path) -> Path:
    """MIMIC-CXR-JPG: split and metadata CSVs, files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom>.jpg and sXXXXXXXX.txt.

    Test has 6 studies, one of them (s50000005) without a FINDINGS section; study s50000001 has a lateral
    image listed before its PA image.
    """
    root = tmp_path / "mimic_cxr"
    root.mkdir()
    split_rows, meta_rows = [], []
    plan = [("train", 0)] + [("test", n) for n in range(1, 7)] + [("validate", 7)]
    for split, n in plan:
        subject, study = f"1{n}000000", f"5000000{n}"
        folder = root / "files" / f"p1{n}" / f"p{subject}" / f"s{study}"
        dicoms = [("lat", "LATERAL"), ("pa", "PA")] if n == 1 else [("ap", "AP")]
        for name, view in dicoms:
            dicom = f"{name}-{n}"
            write_image(folder / f"{dicom}.jpg")
            split_rows.append([dicom, study, subject, split])
            meta_rows.append([dicom, subject, study, view])
        report = MIMIC_REPORT_NO_FINDINGS if n == 5 else MIMIC_REPORT.replace("cough", f"cough {n}")
        (folder.parent / f"s{study}.txt").write_text(report, encoding="utf-8")
    write_csv_gz(root / "mimic-cxr-2.0.0-split.csv.gz", ["dicom_id", "study_id", "subject_id", "split"], split_rows)
    write_csv_gz(root / "mimic-cxr-2.0.0-metadata.csv.gz", ["dicom_id", "subject_id", "study_id", "ViewPosition"], meta_rows)
    return root
