"""Probe sets that need the image: negatives from the image's own body region and modality, each region
balanced, over-represented labels capped, grammatical questions.

The SLAKE fixture is written in the release's layout (``test.json`` records with ``location`` and ``modality``,
``imgs/xmlabN/source.jpg`` with ``mask.png`` and ``detection.json`` of ``{label: [x, y, w, h]}`` beside it)
with head MRIs, chest X-rays, abdomen CTs and one chest CT, labelled with SLAKE's own finding names.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest
from PIL import Image

from harness.cli import main
from harness.regress.probes import (
    article,
    body_region,
    build_probe_set,
    finding_question,
    region_of,
    source_rows,
)
from harness.tasks import get_task

# img_id -> (region as the fixture means it, [(location, modality) of each question], finding labels)
BRAIN, XRAY, ABDOMEN, CHEST_CT = "head mri", "chest x-ray", "abdomen ct", "chest ct"
IMAGES = {
    1: (BRAIN, [("Brain_Tissue", "MRI"), ("Brain", "MRI")],
        ["Brain Edema", "Brain Enhancing Tumor", "Brain Non-enhancing Tumor"]),  # lacks no finding of its region
    2: (BRAIN, [("Brain_Tissue", "MRI")], ["Brain Edema", "Brain Enhancing Tumor"]),
    3: (BRAIN, [("Brain", "MRI")], ["Brain Edema"]),
    4: (BRAIN, [("Brain_Tissue", "MRI")], ["Brain Edema", "Brain Non-enhancing Tumor"]),
    5: (BRAIN, [("Brain_Face", "MRI")], []),  # organs only
    10: (XRAY, [("Lung", "X-Ray"), ("Chest_heart", "X-Ray")], ["Pneumonia"]),
    11: (XRAY, [("Lung", "X-Ray")], ["Nodule", "Effusion"]),
    12: (XRAY, [("Chest_heart", "X-Ray")], ["Cardiomegaly"]),
    13: (XRAY, [("Lung", "X-Ray")], ["Mass", "Nodule"]),
    14: (XRAY, [("Lung", "X-Ray")], ["Effusion", "Atelectasis"]),
    15: (XRAY, [("Lung", "X-Ray")], ["Nodule"]),
    20: (ABDOMEN, [("Abdomen", "CT"), ("Pelvic Cavity", "CT"), ("Abdomen", "CT")], ["Liver Cancer"]),
    21: (ABDOMEN, [("Abdomen", "CT")], ["Liver Cancer", "Kidney Cancer"]),  # lacks no finding of its region
    22: (ABDOMEN, [("Abdomen", "CT")], ["Kidney Cancer"]),
    30: (CHEST_CT, [("Lung", "CT")], ["Lung Cancer"]),  # the only finding of its region: nothing to deny
}
ORGANS = {BRAIN: ["Brain", "Eyes"], XRAY: ["Left Lung", "Right Lung", "Heart"], ABDOMEN: ["Liver", "Spleen"],
          CHEST_CT: ["Left Lung", "Right Lung"]}


def _record(qid, img_id, location, modality, question="Is this image normal?", lang="en") -> dict:
    return {"img_id": img_id, "img_name": f"xmlab{img_id}/source.jpg", "question": question, "answer": "No",
            "q_lang": lang, "location": location, "modality": modality, "answer_type": "CLOSED",
            "base_type": "vqa", "content_type": "Abnormality", "triple": ["vhead", "_", "_"], "qid": qid}


@pytest.fixture
def slake_root(tmp_path):
    root = tmp_path / "slake"
    records, qid = [], 0
    for img_id, (region, questions, findings) in IMAGES.items():
        folder = root / "imgs" / f"xmlab{img_id}"
        folder.mkdir(parents=True)
        Image.new("L", (16, 12), 90).save(folder / "source.jpg")
        Image.new("L", (16, 12), 0).save(folder / "mask.png")
        boxes = [{label: [1, 1, 4, 4]} for label in ORGANS[region]] + [{label: [5, 5, 3, 3]} for label in findings]
        (folder / "detection.json").write_text(json.dumps(boxes), encoding="utf-8")
        for location, modality in questions:
            records.append(_record(qid, img_id, location, modality))
            qid += 1
        records.append(_record(qid, img_id, "Lung", "CT", "图片正常吗?", lang="zh"))  # filtered out: English only
        qid += 1
    (root / "test.json").write_text(json.dumps(records), encoding="utf-8")
    for name in ("train.json", "validate.json"):
        (root / name).write_text(json.dumps(records[:1]), encoding="utf-8")
    return root


def _regions_of_labels() -> dict[str, set[str]]:
    """label -> the regions whose images show it, read from the fixture's definition (not from the code)."""
    regions = defaultdict(set)
    for region, _, findings in IMAGES.values():
        for label in findings:
            regions[label.lower()].add(region)
    return regions


def _image_region(probe) -> str:
    return IMAGES[int(probe["image"].split("xmlab")[1].split("/")[0])][0]


def _leaks(probes) -> list[dict]:
    """The "no" probes whose label is never shown by an image of the probed image's region."""
    regions = _regions_of_labels()
    return [p for p in probes if p["answer"] == "no" and _image_region(p) not in regions[p["probe_label"]]]


def test_probes_build_on_slake_draws_no_negative_from_another_region(slake_root, tmp_path, capsys):
    out = tmp_path / "pope.jsonl"
    assert main(["probes", "build", "--task", "slake", "--data-dir", str(slake_root.parent), "--out", str(out),
                 "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    probes = [json.loads(line) for line in out.read_text().splitlines()]
    negatives = [p for p in probes if p["answer"] == "no"]
    assert [(_image_region(p), p["probe_label"]) for p in _leaks(probes)] == []
    assert summary["negatives_from_another_region"] == {"random": 0, "popular": 0, "adversarial": 0}
    assert all(p["probe_region"] == _image_region(p) for p in probes)
    # every probed region gives negatives, so the check above is not vacuous
    assert {_image_region(p) for p in negatives} == {BRAIN, XRAY, ABDOMEN}
    # the check sees a leak: "brain edema" asked on a chest X-ray, as the whole-set vocabulary drew it
    leaked = dict(negatives[[_image_region(p) for p in negatives].index(XRAY)], probe_label="brain edema")
    assert _leaks([leaked]) == [leaked]


def test_each_region_is_balanced_and_what_could_not_be_asked_is_counted(slake_root):
    probe_set = build_probe_set(source_rows("slake", data_dir=slake_root.parent))
    summary = probe_set.summary()
    counts = Counter((_image_region(p), p["probe_setting"], p["answer"]) for p in probe_set.probes)
    for region in (BRAIN, XRAY, ABDOMEN):
        for setting in ("random", "popular", "adversarial"):
            assert counts[(region, setting, "yes")] == counts[(region, setting, "no")] > 0, (region, setting)
            assert summary["regions"][region]["yes"][setting] == counts[(region, setting, "yes")]
    # brain: images 2, 3 and 4 each lack one brain finding, so each asks one pair; image 1 has all three
    assert summary["regions"][BRAIN]["yes"]["random"] == 3
    # X-rays: 9 findings shown; the median label is asked once, so none more than twice: one nodule is capped
    assert summary["max_per_label"] == 2
    assert summary["regions"][XRAY]["labels"]["nodule"]["yes"]["random"] == 2
    assert summary["regions"][XRAY]["yes"]["random"] == sum(len(IMAGES[i][2]) for i in range(10, 16)) - 1
    dropped = summary["dropped"]
    assert dropped["images_without_findings"] == 1  # image 5: organ boxes only
    assert dropped["images_without_a_candidate_negative"] == {ABDOMEN: 1, BRAIN: 1, CHEST_CT: 1}
    assert dropped["yes_probes"]["no_candidate_negative"] == {ABDOMEN: 2, BRAIN: 3, CHEST_CT: 1}
    assert dropped["yes_probes"]["label_cap"] == {XRAY: 1}
    assert CHEST_CT not in {p["probe_region"] for p in probe_set.probes}
    assert summary["regions"][XRAY]["labels"]["nodule"]["images"] == 3  # labels per region, by images showing them


def test_popular_and_adversarial_negatives_rank_within_the_region(slake_root):
    probes = build_probe_set(source_rows("slake", data_dir=slake_root.parent), per_image=1).probes
    negative = {(p["source_id"], p["probe_setting"]): p["probe_label"] for p in probes if p["answer"] == "no"}
    ids = {p["image"].split("xmlab")[1].split("/")[0]: p["source_id"] for p in probes}
    # image 15 (a nodule): in the X-rays nodule co-occurs with effusion (image 11) and mass (image 13); the tie
    # goes to the region's more frequent, effusion (2 images); popular: effusion as well (nodule 3, effusion 2)
    assert negative[(ids["15"], "adversarial")] == "effusion"
    assert negative[(ids["15"], "popular")] == "effusion"
    # image 10 (pneumonia) co-occurs with nothing: the region's most frequent finding it lacks, never a brain label
    assert negative[(ids["10"], "adversarial")] == "nodule"
    # image 3 (brain edema only): co-occurs with both tumours once; the tie goes by name
    assert negative[(ids["3"], "adversarial")] == "brain enhancing tumor"


def test_an_image_takes_the_region_most_of_its_questions_name(slake_root):
    rows = {row["image"].split("xmlab")[1].split("/")[0]: row for row in source_rows("slake", data_dir=slake_root.parent)}
    assert rows["20"]["region"] == ABDOMEN  # two questions say Abdomen, one Pelvic Cavity
    assert rows["10"]["region"] == XRAY  # "Lung" and "Chest_heart" are both the chest
    assert rows["30"]["region"] == CHEST_CT and rows["1"]["region"] == BRAIN


@pytest.mark.parametrize(("location", "region"), [
    ("Brain_Face", "head"), ("Brain_Tissue", "head"), ("HEAD", "head"), ("Chest_heart", "chest"),
    ("Lung", "chest"), ("CHEST", "chest"), ("ABD", "abdomen"), ("Abdomen", "abdomen"),
    ("Pelvic Cavity", "pelvis"), ("Neck", "neck"), ("Knee", "knee"), ("", ""),
])
def test_body_regions_of_slake_and_vqa_rad_locations(location, region):
    assert body_region(location) == region


def test_region_keys_join_region_and_modality():
    assert region_of({"location": "Lung", "modality": "X-Ray"}) == "chest x-ray"
    assert region_of({"image_organ": "HEAD"}) == "head"  # VQA-RAD names no modality
    assert region_of({"lesion_kind": "nodule"}) == "unspecified"  # the synthetic suite: one kind of film


@pytest.mark.parametrize(("label", "question"), [
    ("pneumonia", "Is there pneumonia?"), ("effusion", "Is there an effusion?"), ("nodules", "Are there nodules?"),
    ("mass", "Is there a mass?"), ("nodule", "Is there a nodule?"), ("brain edema", "Is there brain edema?"),
    ("liver cancer", "Is there liver cancer?"), ("atelectasis", "Is there atelectasis?"),
    ("cardiomegaly", "Is there cardiomegaly?"), ("consolidation", "Is there consolidation?"),
    ("infiltrate", "Is there an infiltrate?"), ("pneumothorax", "Is there a pneumothorax?"),
    ("brain enhancing tumor", "Is there a brain enhancing tumor?"), ("opacity", "Is there an opacity?"),
    ("uterine fibroid", "Is there a uterine fibroid?"), ("ulcer", "Is there an ulcer?"),
    ("mri artifact", "Is there an MRI artifact?"), ("ascites", "Is there ascites?"), ("ards", "Is there ARDS?"),
    ("calcifications", "Are there calcifications?"), ("hydronephrosis", "Is there hydronephrosis?"),
])
def test_questions_are_grammatical(label, question):
    assert finding_question(label) == question


@pytest.mark.parametrize(("word", "expected"), [
    ("effusion", "an"), ("mass", "a"), ("MRI", "an"), ("CT", "a"), ("X-ray", "an"), ("hour", "an"),
    ("unilateral", "a"), ("umbilical", "an"), ("European", "a"), ("one", "a"), ("NG", "an"),
])
def test_article_follows_the_sound(word, expected):
    assert article(word) == expected


def test_an_over_represented_label_is_capped_and_the_cap_is_reported():
    rows = [{"id": f"n{i}", "image": f"n{i}.png", "boxes": json.dumps([{"label": "Nodule", "bbox": [0, 0, 1, 1]}]),
             "location": "Lung", "modality": "X-Ray"} for i in range(20)]
    rows += [{"id": f"{lab}{i}", "image": f"{lab}{i}.png", "boxes": json.dumps([{"label": lab, "bbox": [0, 0, 1, 1]}]),
              "location": "Lung", "modality": "X-Ray"} for lab in ("Mass", "Effusion") for i in range(2)]
    probe_set = build_probe_set(rows)
    summary = probe_set.summary()
    assert summary["max_per_label"] == 4  # twice the median (2) of nodule 20, mass 2, effusion 2
    yes = Counter(p["probe_label"] for p in probe_set.probes if p["answer"] == "yes" and p["probe_setting"] == "random")
    assert yes == {"nodule": 4, "mass": 2, "effusion": 2}
    assert summary["dropped"]["yes_probes"]["label_cap"] == {"chest x-ray": 16}
    no = Counter(p["probe_label"] for p in probe_set.probes if p["answer"] == "no" and p["probe_setting"] == "random")
    assert sum(no.values()) == 8
    # without the cap, "nodule" would be yes 20 times and no at most 4: the label alone would answer 20 of 24
    assert summary["label_only_accuracy"]["random"] < 0.8
    assert build_probe_set(rows, max_per_label=1).summary()["regions"]["chest x-ray"]["yes"]["random"] == 3


def test_slake_probe_task_builds_the_same_region_bound_set(slake_root):
    data = get_task("slake_probe").load("test", slake_root.parent)
    rows = data.select_columns(["question", "answer", "probe_label", "probe_region", "probe_version", "source_id"])
    rows = rows.to_list()
    assert {r["probe_version"] for r in rows} == {"2.0"}
    assert len(rows) == len(build_probe_set(source_rows("slake", data_dir=slake_root.parent)).probes)
    assert "Is there brain edema?" in {r["question"] for r in rows}
