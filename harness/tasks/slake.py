"""SLAKE 1.0 (Liu et al., 2021): a bilingual (English/Chinese) knowledge-enhanced Med-VQA dataset.

Layout: ``train.json`` / ``validate.json`` / ``test.json``, each a list of
``{img_id, img_name, question, answer, q_lang, location, modality, answer_type, base_type, content_type,
triple, qid}``; images at ``imgs/<img_name>`` (for example ``imgs/xmlab102/source.jpg``) with ``mask.png``
and ``detection.json`` (a list of ``{label: [x, y, w, h]}`` boxes) beside each image.

Lesions: ``mask.png`` is an organ label map (for X-rays close to a copy of the image), not a lesion mask, so
it is not loaded. ``detection.json`` mixes organ boxes (Liver, Heart, Left Lung, ...) with finding boxes
(Liver Cancer, Nodule, Effusion, ...); the ``boxes`` column keeps them all and flags each with
``finding`` (``is_finding``), and lesion localization uses the finding boxes only.

Papers, MMedPO included, report the English questions only (test: 1,061 QA, 416 closed, 645 open), so
``language="en"`` is the default; ``"zh"`` and ``"all"`` select the others.

Hub snapshots (``source="hub"``, or detected when the JSON files are absent and ``data/*.parquet`` is present):
the layout of ``mdwiratathya/SLAKE-vqa-english``, ``data/train-0000i-of-00002.parquet``,
``data/validation-00000-of-00001.parquet``, ``data/test-00000-of-00001.parquet`` (a ``-<hash>`` part is accepted
too), with ``image`` {bytes, path}, ``question`` and ``answer``. Its other columns could not be checked here;
any of SLAKE's own (``qid``, ``answer_type``, ``q_lang``, ``location``, ``modality``, ``content_type``,
``base_type``, ``img_id``, ``img_name``) present are read, and absent ones are empty: without ``answer_type``
the yes/no rule types the rows, without ``qid`` the id is the row number, without ``q_lang`` every row counts
as English. A snapshot has no ``detection.json``, so ``boxes`` is ``"[]"``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, ClassVar

from harness.core.errors import DataError
from harness.core.io import read_json
from harness.tasks import _loading as L
from harness.tasks import hub
from harness.tasks.base import Task

SPLIT_FILES = {"train": "train.json", "validation": "validate.json", "test": "test.json"}
IMAGE_FOLDER = "imgs"
DETECTION_FILE = "detection.json"
HUB_REPO = "mdwiratathya/SLAKE-vqa-english"
HUB_SPLITS = {"train": "train", "validation": "validation", "test": "test"}
METADATA = ("q_lang", "modality", "location", "content_type", "base_type", "img_id")

# The disease / abnormality labels of SLAKE's detection.json; every other label there names an organ.
FINDING_LABELS = (
    "Liver Cancer", "Lung Cancer", "Brain Edema", "Brain Enhancing Tumor", "Brain Non-enhancing Tumor",
    "Pneumonia", "Nodule", "Mass", "Cardiomegaly", "Atelectasis", "Pneumothorax", "Effusion", "Infiltrate",
)
# A label naming one of these words is a finding, so a spelling variant ("brain tumour", "Kidney Cancer")
# still counts; no organ name in SLAKE contains one.
FINDING_WORDS = frozenset({
    "cancer", "tumor", "tumour", "edema", "oedema", "pneumonia", "nodule", "mass", "cardiomegaly",
    "atelectasis", "pneumothorax", "effusion", "infiltrate", "infiltration", "lesion",
})

CITATION = (
    "Liu, Zhan, Xu, Ma, Yang, Wu. SLAKE: A Semantically-Labeled Knowledge-Enhanced Dataset for Medical "
    "Visual Question Answering. ISBI 2021."
)


@dataclasses.dataclass
class SlakeOptions(hub.SourceOptions):
    language: str = L.option_field(
        "en", "question language: 'en' (as papers report), 'zh', or 'all'", ("en", "zh", "all")
    )
    source: str = hub.source_option("the JSON release", "'original': train.json / validate.json / test.json with imgs/",
                                    HUB_REPO)


def _wanted(record: dict, language: str) -> bool:
    return language == "all" or str(record.get("q_lang", "")).strip() == language


def is_finding(label: str) -> bool:
    """Whether a detection.json label names a disease or abnormality (not an organ): see ``FINDING_WORDS``."""
    words = set(re.findall(r"[a-z]+", str(label).lower()))
    return bool(words & FINDING_WORDS)


def read_boxes(path: Path) -> str:
    """``detection.json`` as a JSON string of ``[{"label", "bbox": [x, y, w, h], "finding"}]``; "[]" when absent."""
    if not path.is_file():
        return "[]"
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(path, "expected a JSON list of {label: [x, y, w, h]} boxes")
    boxes = []
    for index, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise DataError(path, "expected an object {label: [x, y, w, h]}", record=index)
        for label, bbox in entry.items():
            if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
                raise DataError(path, f"expected [x, y, w, h] numbers, found {bbox!r}", record=index, field=label)
            boxes.append({"label": label, "bbox": [float(v) for v in bbox], "finding": is_finding(label)})
    return json.dumps(boxes)


@dataclasses.dataclass
class SlakeTask(hub.ReleaseOrSnapshot, Task):
    options_class: ClassVar[type] = SlakeOptions
    hub_splits = HUB_SPLITS
    hub_repo = HUB_REPO

    def _rows(self, path: Path, opts: SlakeOptions) -> tuple[list[dict[str, str]], L.BadRecords]:
        """The good records of one split file in the chosen language, and the bad ones counted (or raised)."""
        rows = []
        bad = L.BadRecords(path, opts.strict)
        for index, record in enumerate(L.read_records(path)):
            if not _wanted(record, opts.language):
                continue
            with bad.record():
                row = {
                    **L.vqa_row(path, record, index, "img_name"),
                    **{name: L.text(record.get(name))
                       for name in ("q_lang", "modality", "location", "content_type", "base_type", "img_id")},
                }
            if not bad.failed:
                rows.append(row)
        return rows, bad

    def _load_hub(self, split: str, data_dir: str | Path | None, opts: SlakeOptions, kind: str):
        if kind == "remote":
            path, table = Path(f"hub:{opts.repo}"), hub.load_remote(self.name, opts.repo, HUB_SPLITS[split])
        else:
            files = hub.split_shards(self.require_data_dir(data_dir), split, HUB_SPLITS)
            path, table = files[0], hub.read_table(files)
        present = set(table.column_names)
        texts = table.select([c for c in table.column_names if c != "image"]).to_pylist()
        empty = set(hub.missing_images(table, path)) if opts.check_images != "none" else set()
        paths = hub.image_paths(table, path)
        bad = L.BadRecords(path, opts.strict)
        names = ("id", "question", "answer", "answer_type", "boxes", "image_path", *METADATA)
        columns: dict[str, list] = {name: [] for name in names}
        kept = []
        for index, record in enumerate(texts):
            if "q_lang" in present and not _wanted(record, opts.language):
                continue
            with bad.record():
                question, answer = hub.question_answer(path, record, index)
                qid = L.get_field(path, record, "qid", index, kind=(int, str)) if "qid" in present else index
                kind_ = L.answer_type(path, record, index) if "answer_type" in present else hub.yes_no_type(answer)
                if index in empty:
                    raise DataError(path, "no image bytes in the image struct", record=index, field="image")
            if bad.failed:
                continue
            kept.append(index)
            row = {"id": str(qid).strip(), "question": question, "answer": answer, "answer_type": kind_,
                   "boxes": "[]", "image_path": L.text(record.get("img_name")) or paths[index] or "",
                   **{name: L.text(record.get(name)) for name in METADATA}}
            for name in names:
                columns[name].append(row[name])
        if not kept:
            raise DataError(path, f"no usable records with q_lang '{opts.language}'", field="q_lang")
        bad.warn(self.name, split)
        return hub.build_kept(columns, table, kept, path, opts.check_images)

    def _load_release(self, root: Path, split: str, kind: str, opts: SlakeOptions):
        path = root / SPLIT_FILES[split]
        rows, bad = self._rows(path, opts)
        if not rows:
            raise DataError(path, f"no usable records with q_lang '{opts.language}'", field="q_lang")
        bad.warn(self.name, split)
        names = (
            "id", "image", "question", "answer", "answer_type", "boxes", "image_path",
            "q_lang", "modality", "location", "content_type", "base_type", "img_id",
        )
        columns: dict[str, list] = {name: [] for name in names}
        images = []
        boxes_by_folder: dict[Path, str] = {}
        for row in rows:
            image = root / IMAGE_FOLDER / row["image_path"]
            images.append((row["where"], image))
            folder = image.parent
            if folder not in boxes_by_folder:
                boxes_by_folder[folder] = read_boxes(folder / DETECTION_FILE)
            columns["image"].append(str(image))
            columns["boxes"].append(boxes_by_folder[folder])
            for name in names:
                if name not in ("image", "boxes"):
                    columns[name].append(row[name])
        L.check_image_files(images, opts.check_images, path, "img_name")
        return L.build_dataset(columns, image_columns=("image",), source=path)

    def _hub_filter(self, opts: SlakeOptions) -> tuple[str, Any]:
        return "q_lang", opts.language

    def _release_found(self, root: Path, kind: str) -> bool:
        return all((root / f).is_file() for f in SPLIT_FILES.values())

    def _release_count(self, root: Path, split: str, kind: str, opts: SlakeOptions) -> tuple[int, L.BadRecords]:
        rows, bad = self._rows(root / SPLIT_FILES[split], opts)
        return len(rows), bad


TASK = SlakeTask(
    name="slake",
    family="vqa",
    # 1.1: closed_accuracy / open_* rescored (exact match, distinct tokens); 1.0 results are not comparable
    # 1.2: closed questions prompted by their form (choice questions no longer told "Answer yes or no.") and
    # closed_accuracy read by the closed-answer reader (harness.metrics.closed_reader); 1.1 results do not mix
    version="1.2",
    official_sizes={"train": 4919, "validation": 1053, "test": 1061},
    folder="slake",
    splits=("train", "validation", "test"),
    metrics=L.VQA_METRICS,
    description="SLAKE 1.0 Med-VQA (English by default): 1,061 test QA (416 closed, 645 open) on 96 images",
    citation=CITATION,
)
