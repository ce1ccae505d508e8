"""IU-Xray (Demner-Fushman et al., 2016) report generation in the R2Gen layout (Chen et al., 2020).

Layout: ``annotation.json`` = ``{"train": [...], "val": [...], "test": [...]}``, each record
``{id, report, image_path: [frontal, lateral], split}``, images at ``images/<image_path>``. Test: 590 reports.

R2Gen-based papers (MMedPO included) give the model one view; ``views="first"`` (default) does the same,
``views="both"`` also adds an ``images`` column with every view. The public annotation ships without images:
``load`` then stops with one line naming the first missing file unless ``check_images="none"``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from harness.core.errors import DataError
from harness.core.io import read_json
from harness.tasks import _loading as L
from harness.tasks.base import DEFAULT_REPORT_INSTRUCTION, Task

# Harness split name -> key in R2Gen's annotation.json.
R2GEN_SPLIT_KEYS = {"train": "train", "validation": "val", "test": "test"}
ANNOTATION_FILE = "annotation.json"
IMAGE_FOLDER = "images"

CITATION = (
    "Demner-Fushman et al. Preparing a collection of radiology examinations for distribution and retrieval. "
    "JAMIA 23(2), 2016. Split: Chen, Song, Chang, Wan. Generating Radiology Reports via Memory-driven "
    "Transformer. EMNLP 2020 (R2Gen)."
)


@dataclasses.dataclass
class R2GenOptions(L.LoadOptions):
    annotation: str = L.option_field(
        ANNOTATION_FILE, "annotation file, relative to the task folder (or an absolute path)"
    )
    views: str = L.option_field(
        "first",
        "'first': one image per report, as R2Gen-based papers; 'both'/'all': also an 'images' column with every view",
        ("first", "both", "all"),
    )


def annotation_path(root: Path, annotation: str) -> Path:
    path = Path(annotation).expanduser()
    return path if path.is_absolute() else root / path


def r2gen_columns(
    path: Path, records: list[dict], split_key: str, image_root: Path, views: str, extra: tuple[str, ...] = (),
    bad: L.BadRecords | None = None,
) -> tuple[dict[str, list], list[list[tuple[object, Path]]]]:
    """Columns of one R2Gen split, and per row the ``(record, image)`` pairs of the images it uses.

    A bad record goes to ``bad`` (skipped and counted, or raised when strict); without ``bad`` it raises.
    """
    bad = bad or L.BadRecords(path, strict=True)
    names = ["id", "image", "question", "answer", "answer_type", "image_path", *extra]
    if views != "first":
        names.append("images")
    columns: dict[str, list] = {name: [] for name in names}
    images = []
    for index, record in enumerate(records):
        with bad.record():
            rid = L.get_field(path, record, "id", f"{split_key}[{index}]", kind=(str, int))
            where = f"{split_key}[{index}] (id {rid})"
            paths = L.get_field(path, record, "image_path", where, kind=list)
            if not paths or not all(isinstance(p, str) and p.strip() for p in paths):
                raise DataError(path, f"expected a non-empty list of image paths, found {paths!r}", record=where,
                                field="image_path")
            report = L.get_field(path, record, "report", where).strip()
            extras = [L.text(L.get_field(path, record, name, where, kind=(str, int))) for name in extra]
        if bad.failed:
            continue
        used = paths if views != "first" else paths[:1]
        images.append([(where, image_root / p) for p in used])
        columns["id"].append(str(rid))
        columns["image"].append(str(image_root / paths[0]))
        columns["question"].append(DEFAULT_REPORT_INSTRUCTION)
        columns["answer"].append(report)
        columns["answer_type"].append("report")
        columns["image_path"].append(paths[0])
        for name, value in zip(extra, extras):
            columns[name].append(value)
        if views != "first":
            columns["images"].append([str(image_root / p) for p in paths])
    return columns, images


def r2gen_size_report(path: Path, image_root: Path, strict: bool, extra: tuple[str, ...] = ()
                      ) -> tuple[dict[str, int], dict[str, str]]:
    """Usable records per split of an R2Gen annotation file, and what the bad-record policy skipped."""
    data = read_json(path)
    counted = []
    for split, key in R2GEN_SPLIT_KEYS.items():
        records = L.read_split_dict(path, key, list(R2GEN_SPLIT_KEYS.values()), data)
        bad = L.BadRecords(path, strict)
        columns, _ = r2gen_columns(path, records, key, image_root, "first", extra, bad=bad)
        counted.append((split, len(columns["id"]), bad))
    return L.split_report(counted)


@dataclasses.dataclass
class IUXrayTask(L.SizesFromReport, Task):
    options_class: ClassVar[type] = R2GenOptions

    def _load(self, split: str, data_dir: str | Path | None, **options: Any):
        opts = L.parse_options(self.name, self.options_class, options)
        root = self.require_data_dir(data_dir)
        path = annotation_path(root, opts.annotation)
        key = R2GEN_SPLIT_KEYS[split]
        records = L.read_split_dict(path, key, list(R2GEN_SPLIT_KEYS.values()))
        if not records:
            raise DataError(path, f"split '{key}' is empty")
        bad = L.BadRecords(path, opts.strict)
        columns, images = r2gen_columns(path, records, key, root / IMAGE_FOLDER, opts.views, bad=bad)
        if not columns["id"]:
            raise DataError(path, f"split '{key}' has no usable records ({bad.summary()})")
        bad.warn(self.name, split)
        L.check_image_files([i for row in images for i in row], opts.check_images, path, "image_path")
        return L.build_dataset(columns, image_list_columns=("images",), source=path)

    def size_report(self, data_dir: str | Path | None = None, **options: Any) -> tuple[dict[str, int], dict[str, str]] | None:
        opts = L.parse_options(self.name, self.options_class, {**self.options, **options})
        root = self.data_dir(data_dir)
        if root is None:
            return None
        path = annotation_path(root, opts.annotation)
        if not path.is_file():
            return None
        return r2gen_size_report(path, root / IMAGE_FOLDER, opts.strict)


TASK = IUXrayTask(
    name="iu_xray",
    family="report",
    # 1.1: the CheXpert metrics read reports by labeler 2 (issue 26's report-level rules) and the text pairs'
    # fact-checks with it; 1.0 clinical scores and pairs are not comparable
    version="1.1",
    official_sizes={"train": 2069, "validation": 296, "test": 590},
    folder="iu_xray",
    splits=("train", "validation", "test"),
    metrics=L.REPORT_METRICS,
    description="IU-Xray chest X-ray report generation (R2Gen split): 590 test reports",
    citation=CITATION,
)
