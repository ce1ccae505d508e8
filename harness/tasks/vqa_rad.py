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
class VQARADTask(Task):
    options_class: ClassVar[type] = VQARADOptions

    def _source_records(self, root: Path, split: str, source: str) -> tuple[Path, list[tuple[int, dict]]]:
        """``(file, [(index in file, record)])`` for one split."""
        if source == "split":
            path = root / SPLIT_FILES[split]
            return path, list(enumerate(L.read_records(path)))
        path = root / OSF_FILE
        chosen = []
        for index, record in enumerate(L.read_records(path)):
            phrase = L.get_field(path, record, "phrase_type", index)
            if (phrase in OSF_TEST_PHRASES) == (split == "test"):
                chosen.append((index, record))
        return path, chosen

    def _load(self, split: str, data_dir: str | Path | None, **options: Any):
        opts = L.parse_options(self.name, self.options_class, options)
        root = self.require_data_dir(data_dir)
        path, records = self._source_records(root, split, opts.source)
        columns: dict[str, list] = {
            name: []
            for name in (
                "id", "image", "question", "answer", "answer_type",
                "image_path", "image_organ", "question_type", "phrase_type",
            )
        }
        images = []
        for index, record in records:
            qid = L.get_field(path, record, "qid", index, kind=(int, str))
            where = f"{index} (qid {qid})"
            image_name = L.get_field(path, record, "image_name", where)
            image = root / IMAGE_FOLDER / image_name
            images.append((where, image))
            columns["id"].append(str(qid).strip())
            columns["image"].append(str(image))
            columns["question"].append(L.get_field(path, record, "question", where).strip())
            columns["answer"].append(str(L.get_field(path, record, "answer", where, kind=(str, int, float))).strip())
            columns["answer_type"].append(L.answer_type(path, record, where))
            columns["image_path"].append(image_name)
            columns["image_organ"].append(L.text(record.get("image_organ")))
            columns["question_type"].append(L.text(record.get("question_type")))
            columns["phrase_type"].append(L.text(record.get("phrase_type")).removeprefix("test_"))
        if not records:
            raise DataError(path, f"no records for split '{split}'")
        L.check_image_files(images, opts.check_images, path, "image_name")
        return L.build_dataset(columns, source=path)

    def sizes(self, data_dir: str | Path | None = None, **options: Any) -> dict[str, int] | None:
        opts = L.parse_options(self.name, self.options_class, {**self.options, **options})
        root = self.data_dir(data_dir)
        if root is None:
            return None
        needed = [root / OSF_FILE] if opts.source == "osf" else [root / f for f in SPLIT_FILES.values()]
        if not all(p.is_file() for p in needed):
            return None
        return {split: len(self._source_records(root, split, opts.source)[1]) for split in self.splits}


TASK = VQARADTask(
    name="vqa_rad",
    family="vqa",
    version="1.0",
    folder="vqa_rad",
    splits=("train", "test"),
    metrics=L.VQA_METRICS,
    description="VQA-RAD radiology VQA: 451 test QA (272 closed, 179 open) on 315 images",
    citation=CITATION,
)
