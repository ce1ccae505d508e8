"""``clinic_vqa``: a radiology VQA benchmark kept as one CSV file per split.

The layout (``sample_data/clinic_vqa`` in this package's source is a complete one)::

    clinic_vqa/
        train.csv           qid,image_name,question,answer,answer_type,modality
        test.csv
        images/<image_name>

``answer_type`` is ``closed`` or ``open`` (any case, stray spaces tolerated). A row with a missing or empty
field is skipped and counted (``harness tasks`` shows ``test 6 (1 skipped: empty answer)``), or with the
option ``strict=true`` refuses the split in one line naming the file, the row and the field. The option
``modality=CT`` keeps only the questions on CT images.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from harness.tasks.loading import (
    VQA_METRICS,
    BadRecords,
    DataError,
    LoadOptions,
    SizesFromReport,
    Task,
    build_dataset,
    check_image_files,
    option_field,
    parse_options,
    split_report,
    text,
    vqa_row,
)

SPLIT_FILES = {"train": "train.csv", "test": "test.csv"}
IMAGE_FOLDER = "images"
COLUMNS = ("id", "image", "question", "answer", "answer_type", "modality")


@dataclasses.dataclass
class ClinicVQAOptions(LoadOptions):  # check_images and strict come with LoadOptions
    modality: str = option_field("", "keep only the questions on images of this modality (CT, MRI, X-ray); '': all")


@dataclasses.dataclass
class ClinicVQATask(SizesFromReport, Task):  # SizesFromReport: sizes() is size_report()'s first half
    options_class: ClassVar[type] = ClinicVQAOptions  # what --task-option clinic_vqa.KEY=VALUE accepts

    def _rows(self, root: Path, split: str, opts: ClinicVQAOptions) -> tuple[Path, list[dict[str, str]], BadRecords]:
        """The good rows of one split, and the bad ones counted (or raised, when strict)."""
        path = root / SPLIT_FILES[split]
        if not path.is_file():
            raise DataError(path, f"file not found: clinic_vqa keeps the {split} split in {SPLIT_FILES[split]}")
        bad = BadRecords(path, opts.strict)
        rows = []
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            for record in reader:
                with bad.record():  # a DataError inside is counted, or raised when strict
                    row = {**vqa_row(path, record, reader.line_num, "image_name"),
                           "modality": text(record.get("modality"))}
                if bad.failed:
                    continue
                if opts.modality and row["modality"].lower() != opts.modality.lower():
                    continue
                rows.append(row)
        return path, rows, bad

    def _load(self, split: str, data_dir: str | Path | None, **options: Any):
        opts = parse_options(self.name, self.options_class, options)
        root = self.require_data_dir(data_dir)
        path, rows, bad = self._rows(root, split, opts)
        if not rows:
            raise DataError(path, f"no usable rows for split '{split}'")
        bad.warn(self.name, split)
        columns: dict[str, list] = {name: [] for name in COLUMNS}
        images = []
        for row in rows:
            image = root / IMAGE_FOLDER / row["image_path"]
            images.append((row["where"], image))
            row = {**row, "image": str(image)}
            for name in COLUMNS:
                columns[name].append(row[name])
        check_image_files(images, opts.check_images, path, "image_name")
        return build_dataset(columns, source=path)

    def size_report(self, data_dir: str | Path | None = None, **options: Any):
        """Items per split and what was skipped, without decoding an image; None when the data is absent."""
        opts = parse_options(self.name, self.options_class, {**self.options, **options})
        root = self.data_dir(data_dir)
        if root is None or not all((root / name).is_file() for name in SPLIT_FILES.values()):
            return None
        counted = []
        for split in self.splits:
            _, rows, bad = self._rows(root, split, opts)
            counted.append((split, len(rows), bad))
        return split_report(counted)


TASK = ClinicVQATask(
    name="clinic_vqa",  # must equal the entry-point name
    family="vqa",
    version="1.0",  # bump it when the prompts, the items or the scoring change: results of versions never mix
    folder="clinic_vqa",  # <data root>/clinic_vqa, or $HARNESS_DATA_CLINIC_VQA
    splits=("train", "test"),
    metrics=VQA_METRICS,
    official_sizes={"train": 6, "test": 6},  # the release's items: a run on fewer is marked partial
    description="Example plugin task: radiology VQA from CSV files (6 train, 6 test questions)",
    citation="Example data made for the medpo-harness documentation; no publication.",
)
