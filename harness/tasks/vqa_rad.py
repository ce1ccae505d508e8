"""VQA-RAD (Lau et al., 2018): 315 radiology images with clinician-written questions.

Two on-disk sources give the same 451-question test set:

- ``source="split"`` (default): ``testset.json`` / ``trainset.json``, the standard split used by MEVF and most
  Med-VQA papers (train 3,064 QA, including the augmented "frame" phrasings).
- ``source="osf"``: the original OSF release ``VQA_RAD Dataset Public.json`` (2,248 QA); test is
  ``phrase_type`` in {test_freeform, test_para}, train the rest (1,797 QA, the MMedPO training pool).

Real quirks handled: ``answer_type`` "CLOSED " with a trailing space, integer answers, a string ``qid``.
``phrase_type`` is reported without the OSF "test_" prefix so both sources carry the same metadata.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import DataError
from harness.tasks import _loading as L
from harness.tasks.base import Task

SPLIT_FILES = {"test": "testset.json", "train": "trainset.json"}
OSF_FILE = "VQA_RAD Dataset Public.json"
OSF_TEST_PHRASES = ("test_freeform", "test_para")
IMAGE_FOLDER = "images"

CITATION = (
    "Lau, Gayen, Ben Abacha, Demner-Fushman. A dataset of clinically generated visual questions and answers "
    "about radiology images. Scientific Data 5, 180251 (2018)."
)


@dataclasses.dataclass
class VQARADOptions(L.LoadOptions):
    source: str = L.option_field(
        "split",
        "'split': testset.json / trainset.json (standard split); 'osf': the original OSF file, split by phrase_type",
        ("split", "osf"),
    )


@dataclasses.dataclass
class VQARADTask(L.SizesFromReport, Task):
    options_class: ClassVar[type] = VQARADOptions

    def _source_records(self, root: Path, split: str, source: str, bad: L.BadRecords | None = None
                        ) -> tuple[Path, list[tuple[int, dict]]]:
        """``(file, [(index in file, record)])`` for one split; OSF records without a phrase_type go to ``bad``."""
        if source == "split":
            path = root / SPLIT_FILES[split]
            return path, list(enumerate(L.read_records(path)))
        path = root / OSF_FILE
        bad = bad or L.BadRecords(path, strict=True)
        chosen = []
        for index, record in enumerate(L.read_records(path)):
            with bad.record():
                phrase = L.get_field(path, record, "phrase_type", index)
            if not bad.failed and (phrase in OSF_TEST_PHRASES) == (split == "test"):
                chosen.append((index, record))
        return path, chosen

    def _rows(self, root: Path, split: str, opts: VQARADOptions) -> tuple[Path, list[dict[str, str]], L.BadRecords]:
        """The good records of one split, and the bad ones counted (or raised, when strict)."""
        file = root / (OSF_FILE if opts.source == "osf" else SPLIT_FILES[split])
        bad = L.BadRecords(file, opts.strict)
        path, records = self._source_records(root, split, opts.source, bad)
        rows = []
        for index, record in records:
            with bad.record():
                row = {
                    **L.vqa_row(path, record, index, "image_name"),
                    "image_organ": L.text(record.get("image_organ")),
                    "question_type": L.text(record.get("question_type")),
                    "phrase_type": L.text(record.get("phrase_type")).removeprefix("test_"),
                }
            if not bad.failed:
                rows.append(row)
        return path, rows, bad

    def _load(self, split: str, data_dir: str | Path | None, **options: Any):
        opts = L.parse_options(self.name, self.options_class, options)
        root = self.require_data_dir(data_dir)
        path, rows, bad = self._rows(root, split, opts)
        if not rows:
            raise DataError(path, f"no usable records for split '{split}'")
        bad.warn(self.name, split)
        names = ("id", "image", "question", "answer", "answer_type", "image_path", "image_organ", "question_type",
                 "phrase_type")
        columns: dict[str, list] = {name: [] for name in names}
        images = []
        for row in rows:
            image = root / IMAGE_FOLDER / row["image_path"]
            images.append((row["where"], image))
            columns["image"].append(str(image))
            for name in names:
                if name != "image":
                    columns[name].append(row[name])
        L.check_image_files(images, opts.check_images, path, "image_name")
        return L.build_dataset(columns, source=path)

    def size_report(self, data_dir: str | Path | None = None, **options: Any) -> tuple[dict[str, int], dict[str, str]] | None:
        opts = L.parse_options(self.name, self.options_class, {**self.options, **options})
        root = self.data_dir(data_dir)
        if root is None:
            return None
        needed = [root / OSF_FILE] if opts.source == "osf" else [root / f for f in SPLIT_FILES.values()]
        if not all(p.is_file() for p in needed):
            return None
        counted = []
        for split in self.splits:
            _, rows, bad = self._rows(root, split, opts)
            counted.append((split, len(rows), bad))
        return L.split_report(counted)


TASK = VQARADTask(
    name="vqa_rad",
    family="vqa",
    # 1.1: closed_accuracy / open_* rescored (exact match, distinct tokens); 1.0 results are not comparable
    version="1.1",
    official_sizes={"train": 3064, "test": 451},
    folder="vqa_rad",
    splits=("train", "test"),
    metrics=L.VQA_METRICS,
    description="VQA-RAD radiology VQA: 451 test QA (272 closed, 179 open) on 315 images",
    citation=CITATION,
)
