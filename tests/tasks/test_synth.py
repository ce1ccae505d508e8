"""The synthetic suite: deterministic, exact masks, a skewed text prior, lazily decoded images."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from harness.core.errors import HarnessError
from harness.tasks import get_task
from harness.tasks.synth import SYNTH_REPORT, SYNTH_VQA, generate_case, generate_split, load_cases


def test_generation_is_deterministic_per_seed():
    a_img, a_mask, a_case = generate_case("test", 7, seed=3)
    b_img, b_mask, b_case = generate_case("test", 7, seed=3)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_mask, b_mask)
    assert a_case.to_json() == b_case.to_json()
    c_img, _, _ = generate_case("test", 7, seed=4)
    assert not np.array_equal(a_img, c_img)
    d_img, _, _ = generate_case("train", 7, seed=3)
    assert not np.array_equal(a_img, d_img)


def test_splits_are_disjoint_draws():
    """The built-in models train on ``sft``; pairs come from ``train``, settings are chosen on ``val`` and
    evaluation uses ``test``."""
    splits = ("sft", "train", "val", "test")
    images = {split: [generate_case(split, i)[0].tobytes() for i in range(40)] for split in splits}
    for i, a in enumerate(splits):
        for b in splits[i + 1:]:
            assert not set(images[a]) & set(images[b]), (a, b)
    assert SYNTH_VQA.load("val", val_size=2)["id"] == ["synth-val-000000", "synth-val-000001"]
    assert SYNTH_VQA.load("sft", sft_size=3)["id"] == ["synth-sft-000000", "synth-sft-000001", "synth-sft-000002"]


def test_cases_do_not_depend_on_the_split_size():
    _, small = load_cases("test", test_size=5, seed=11)
    _, large = load_cases("test", test_size=12, seed=11)
    assert [c.to_json() for c in small] == [c.to_json() for c in large[:5]]


def test_masks_match_the_lesions():
    folder, cases = load_cases("test", test_size=60)
    assert any(c.lesions for c in cases) and any(not c.lesions for c in cases)
    for case in cases:
        mask = np.asarray(Image.open(folder / case.mask))
        assert set(np.unique(mask)) <= {0, 255}
        if not case.lesions:
            assert not mask.any(), case.id
            continue
        covered = np.zeros_like(mask, dtype=bool)
        for lesion in case.lesions:
            x, y, w, h = lesion.bbox
            box = mask[y:y + h, x:x + w]
            assert box.any(), (case.id, lesion)
            # the box is tight: the lesion touches all four of its edges
            assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any(), (case.id, lesion)
            covered[y:y + h, x:x + w] = True
        assert not (mask.astype(bool) & ~covered).any(), case.id


def test_lesions_change_the_pixels_under_their_mask():
    # compare each single lesion with the mirror-image region of the other lung, which is lesion-free
    contrast: dict[str, list[float]] = {}
    for index in range(150):
        image, mask, case = generate_case("test", index)
        if len(case.lesions) != 1:
            continue
        inside = mask > 0
        mirror = inside[:, ::-1]
        delta = float(image[inside].mean()) - float(image[mirror].mean())
        contrast.setdefault(case.lesions[0].kind, []).append(delta)
    assert set(contrast) == {"nodule", "mass", "consolidation", "effusion", "pneumothorax"}
    for kind, deltas in contrast.items():
        median = float(np.median(deltas))
        if kind == "pneumothorax":  # free air is darker than lung
            assert median < -30, (kind, deltas)
        else:  # opacities are brighter
            assert median > 40, (kind, deltas)


def test_closed_answers_are_skewed_towards_no():
    _, cases = load_cases("train", train_size=1000)
    closed = [c.answer for c in cases if c.answer_type == "closed"]
    counts = Counter(closed)
    majority = counts["no"] / len(closed)
    # a text-only model answering "no" is right about 70% of the time, and never near 100%
    assert 0.62 <= majority <= 0.8, counts
    questions = Counter(c.question for c in cases if c.answer_type == "closed")
    # the question text alone does not reveal the answer: each frequent question gets both answers
    for question, _ in questions.most_common(5):
        answers = {c.answer for c in cases if c.question == question}
        assert answers == {"yes", "no"}, question


def test_vocabulary_is_small():
    _, cases = load_cases("train", train_size=500)
    assert len({c.question for c in cases}) < 40
    assert len({c.answer for c in cases if c.answer_type == "open"}) < 40


def test_reports_name_the_lesions_in_chexpert_words():
    _, cases = load_cases("test", test_size=80)
    words = {"nodule": "nodule", "mass": "mass", "consolidation": "consolidation",
             "effusion": "pleural effusion", "pneumothorax": "pneumothorax"}
    for case in cases:
        for lesion in case.lesions:
            assert words[lesion.kind] in case.report and lesion.side in case.report
        if not case.lesions:
            assert "clear" in case.report


def test_vqa_dataset_columns_and_lazy_images():
    import datasets

    ds = get_task("synth_vqa").load("test", test_size=20)
    assert len(ds) == 20
    for name in ("id", "image", "image_path", "question", "answer", "answer_type", "mask", "boxes",
                 "lesion_kind", "lesion_location", "lesion_size", "question_type"):
        assert name in ds.column_names
    assert isinstance(ds.features["image"], datasets.Image)
    assert isinstance(ds.features["mask"], datasets.Image)
    raw = ds.cast_column("image", datasets.Image(decode=False))[0]["image"]
    assert raw["path"].endswith(".png") and raw["bytes"] is None  # stored as a path, decoded on access
    assert raw["path"].endswith(ds[0]["image_path"])
    row = ds[0]
    assert row["image"].size == (64, 64) and row["mask"].size == (64, 64)
    assert set(ds["answer_type"]) <= {"closed", "open"}
    boxes = json.loads(row["boxes"])
    assert isinstance(boxes, list)
    assert SYNTH_VQA.prompt(row).startswith(row["question"])


def test_report_dataset_shares_the_images():
    vqa = SYNTH_VQA.load("test", test_size=10)
    report = SYNTH_REPORT.load("test", test_size=10)
    assert set(report["answer_type"]) == {"report"}
    assert vqa["id"] == report["id"]
    assert vqa["lesion_kind"] == report["lesion_kind"]


def test_sizes_and_no_data_dir_needed():
    # the test splits are the testbed's: large enough for paired comparisons (docs/testbed.md)
    assert SYNTH_VQA.sizes() == {"sft": 2000, "train": 2000, "val": 600, "test": 3000}
    assert SYNTH_REPORT.sizes() == {"sft": 2000, "train": 2000, "val": 600, "test": 3000}
    assert SYNTH_VQA.describe()["sizes"] == {"sft": 2000, "train": 2000, "val": 600, "test": 3000}
    assert SYNTH_VQA.require_data_dir(None).name == "synth"


def test_cache_is_reused_and_regenerated_when_damaged():
    folder = generate_split("test", size=6, seed=5)
    manifest = folder / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    assert generate_split("test", size=6, seed=5) == folder and manifest.stat().st_mtime_ns == stamp
    (folder / "images" / "000002.png").unlink()
    assert generate_split("test", size=6, seed=5) == folder
    assert (folder / "images" / "000002.png").is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp folders left


@pytest.mark.parametrize("options", [{"test_size": 0}, {"image_size": 8}, {"seed": -1}, {"colour": 1}])
def test_bad_options_are_one_line_errors(options):
    with pytest.raises(HarnessError) as info:
        SYNTH_VQA.load("test", **options)
    assert "\n" not in str(info.value)


def test_unknown_split():
    with pytest.raises(HarnessError, match="no split 'validation'"):
        SYNTH_VQA.load("validation")


def test_chexpert_labeler_reads_the_ground_truth_from_the_reports():
    from harness.findings import labeler

    expected = {"nodule": "Lung Lesion", "mass": "Lung Lesion", "consolidation": "Consolidation",
                "effusion": "Pleural Effusion", "pneumothorax": "Pneumothorax"}
    _, cases = load_cases("test", test_size=120)
    for case in cases:
        want = {expected[lesion.kind] for lesion in case.lesions} or {"No Finding"}
        assert labeler.positive_findings(case.report) == want, case.report
