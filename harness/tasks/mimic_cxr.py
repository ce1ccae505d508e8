"""MIMIC-CXR (Johnson et al., 2019) report generation, from either of its two common on-disk layouts.

- ``layout="r2gen"``: R2Gen's ``annotation.json`` = ``{"train", "val", "test"}`` lists of
  ``{id, study_id, subject_id, report, image_path: [one], split}``; images at ``images/<image_path>``.
- ``layout="jpg"``: MIMIC-CXR-JPG as distributed: ``mimic-cxr-2.0.0-split.csv.gz``
  (``dicom_id, study_id, subject_id, split``), images at ``files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg`` and
  the free-text reports at ``files/pXX/pXXXXXXXX/sXXXXXXXX.txt``. The reference is the report's FINDINGS
  section (``section="impression"`` or ``"both"`` change that); studies without it are skipped and counted
  in the log. When ``mimic-cxr-2.0.0-metadata.csv.gz`` is present the model's image is the first PA view,
  else the first AP view, else the first image listed.
- ``layout="auto"`` (default) picks r2gen when ``annotation.json`` exists, else jpg.

MMedPO evaluates on 200 sampled test reports: ``sample=200`` draws them with ``seed`` (reproducible; the
paper's own draw was not released, so its numbers are comparable only in distribution).
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import logging
import random
import re
from pathlib import Path
from typing import Any, ClassVar

from harness.core.errors import DataError, HarnessError
from harness.tasks import _loading as L
from harness.tasks.base import DEFAULT_REPORT_INSTRUCTION, Task
from harness.tasks.iu_xray import R2GEN_SPLIT_KEYS, annotation_path, r2gen_columns, r2gen_size_report

log = logging.getLogger(__name__)

ANNOTATION_FILE = "annotation.json"
SPLIT_CSV = "mimic-cxr-2.0.0-split.csv.gz"
METADATA_CSV = "mimic-cxr-2.0.0-metadata.csv.gz"
JPG_SPLITS = {"train": "train", "validation": "validate", "test": "test"}
VIEW_PREFERENCE = ("PA", "AP")
# A section header is an upper-case label at the start of a line followed by a colon ("FINDINGS:").
SECTION_HEADER = re.compile(r"^[ \t]*([A-Z][A-Z /&,()-]*[A-Z)])[ \t]*:", re.MULTILINE)

CITATION = (
    "Johnson et al. MIMIC-CXR, a de-identified publicly available database of chest radiographs with free-text "
    "reports. Scientific Data 6, 317 (2019); MIMIC-CXR-JPG (Johnson et al., 2019, arXiv:1901.07042)."
)


@dataclasses.dataclass
class MimicOptions(L.LoadOptions):
    layout: str = L.option_field("auto", "'auto', 'r2gen' (annotation.json) or 'jpg' (MIMIC-CXR-JPG)", ("auto", "r2gen", "jpg"))
    section: str = L.option_field(
        "findings", "jpg layout: reference section: 'findings', 'impression', or 'both' (studies having both)",
        ("findings", "impression", "both"),
    )
    views: str = L.option_field("first", "'first': one image per study; 'all': also an 'images' column", ("first", "all", "both"))
    sample: int | None = L.option_field(None, "draw this many items of the split (the paper: 200 test reports)")
    seed: int = L.option_field(0, "seed of the sample draw")
    annotation: str = L.option_field(ANNOTATION_FILE, "r2gen layout: annotation file, relative to the task folder")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sample is not None and (isinstance(self.sample, bool) or not isinstance(self.sample, int) or self.sample < 1):
            raise HarnessError(f"task 'mimic_cxr' option sample must be a positive integer, got {self.sample!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise HarnessError(f"task 'mimic_cxr' option seed must be an integer, got {self.seed!r}")


def report_sections(text: str) -> dict[str, str]:
    """``{HEADER: text}`` for every ``HEADER:`` section of a MIMIC-CXR report, whitespace collapsed."""
    headers = list(SECTION_HEADER.finditer(text))
    sections = {}
    for here, after in zip(headers, [*headers[1:], None]):
        body = text[here.end(): after.start() if after else len(text)]
        body = " ".join(body.split())
        if body:
            sections.setdefault(here.group(1).strip(), body)
    return sections


def reference(sections: dict[str, str], section: str) -> str | None:
    """The reference text for ``section``, or None when the report lacks it."""
    findings, impression = sections.get("FINDINGS"), sections.get("IMPRESSION")
    if section == "findings":
        return findings
    if section == "impression":
        return impression
    return f"{findings} {impression}" if findings and impression else None


def study_folder(subject_id: str, study_id: str) -> Path:
    """``files/pXX/pXXXXXXXX/sXXXXXXXX`` (MIMIC-CXR's folder scheme: first two digits of the subject group it)."""
    return Path("files") / f"p{subject_id[:2]}" / f"p{subject_id}" / f"s{study_id}"


def _read_csv_gz(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as handle:  # a BOM is not a column name
            reader = csv.DictReader(handle)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(path, f"missing column (columns found: {', '.join(reader.fieldnames or []) or 'none'})", field=missing[0])
            rows = list(reader)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(path, f"cannot read gzip CSV ({exc})") from None
    for line, row in enumerate(rows, start=2):
        for column in required:
            if not (row.get(column) or "").strip():
                raise DataError(path, "empty value", record=f"line {line}", field=column)
    return rows


def _studies(path: Path, split: str | None = None) -> dict[str, dict[str, Any]]:
    """Studies of the split CSV in file order: ``{study_id: {subject_id, split, dicoms: [...]}}``."""
    studies: dict[str, dict[str, Any]] = {}
    for line, row in enumerate(_read_csv_gz(path, ("dicom_id", "study_id", "subject_id", "split")), start=2):
        if row["split"].strip() not in JPG_SPLITS.values():
            raise DataError(path, f"unknown split {row['split']!r} (expected {', '.join(JPG_SPLITS.values())})", record=f"line {line}", field="split")
        if split is not None and row["split"].strip() != split:
            continue
        study = studies.setdefault(
            row["study_id"].strip(), {"subject_id": row["subject_id"].strip(), "split": row["split"].strip(), "dicoms": []}
        )
        study["dicoms"].append(row["dicom_id"].strip())
    return studies


def _view_positions(root: Path) -> dict[str, str]:
    path = root / METADATA_CSV
    if not path.is_file():
        return {}
    return {row["dicom_id"].strip(): (row.get("ViewPosition") or "").strip() for row in _read_csv_gz(path, ("dicom_id",))}


def _first_view(dicoms: list[str], views: dict[str, str]) -> str:
    for wanted in VIEW_PREFERENCE:
        for dicom in dicoms:
            if views.get(dicom) == wanted:
                return dicom
    return dicoms[0]


@dataclasses.dataclass
class MimicCXRTask(L.SizesFromReport, Task):
    options_class: ClassVar[type] = MimicOptions

    def layout(self, root: Path, opts: MimicOptions) -> str:
        if opts.layout != "auto":
            return opts.layout
        if annotation_path(root, opts.annotation).is_file():
            return "r2gen"
        if (root / SPLIT_CSV).is_file():
            return "jpg"
        raise DataError(root, f"no MIMIC-CXR layout found: expected {opts.annotation} (R2Gen) or {SPLIT_CSV} (MIMIC-CXR-JPG)")

    def _load(self, split: str, data_dir: str | Path | None, **options: Any):
        opts = L.parse_options(self.name, self.options_class, options)
        root = self.require_data_dir(data_dir)
        if self.layout(root, opts) == "r2gen":
            path = annotation_path(root, opts.annotation)
            key = R2GEN_SPLIT_KEYS[split]
            records = L.read_split_dict(path, key, list(R2GEN_SPLIT_KEYS.values()))
            bad = L.BadRecords(path, opts.strict)
            columns, images = r2gen_columns(path, records, key, root / "images", opts.views, ("subject_id", "study_id"),
                                            bad=bad)
            bad.warn(self.name, split)
        else:
            path = root / SPLIT_CSV
            columns, images = self._jpg_columns(root, JPG_SPLITS[split], opts)
        if not columns["id"]:
            raise DataError(path, f"split '{split}' has no usable studies")
        columns, images = _sample(columns, images, opts, split)
        images = [i for row in images for i in row]
        L.check_image_files(images, opts.check_images, path, "image_path" if path.suffix == ".json" else "dicom_id")
        return L.build_dataset(columns, image_list_columns=("images",), source=path)

    def _jpg_columns(self, root: Path, split: str, opts: MimicOptions):
        studies = _studies(root / SPLIT_CSV, split)
        views = _view_positions(root) if studies else {}
        names = ["id", "image", "question", "answer", "answer_type", "image_path", "subject_id", "study_id", "view_position"]
        if opts.views != "first":
            names.append("images")
        columns: dict[str, list] = {name: [] for name in names}
        images, skipped = [], 0
        for study_id, study in L._progress(list(studies.items()), "reading reports"):
            folder = study_folder(study["subject_id"], study_id)
            report = root / folder.with_suffix(".txt")
            if not report.is_file():
                raise DataError(root / SPLIT_CSV, f"report file {report} not found", record=f"study {study_id}", field="study_id")
            text = reference(report_sections(report.read_text(encoding="utf-8-sig", errors="replace")), opts.section)
            if text is None:
                skipped += 1
                continue
            dicom = _first_view(study["dicoms"], views)
            where = f"study {study_id}"
            used = study["dicoms"] if opts.views != "first" else [dicom]
            images.append([(where, root / folder / f"{d}.jpg") for d in used])
            columns["id"].append(study_id)
            columns["image"].append(str(root / folder / f"{dicom}.jpg"))
            columns["question"].append(DEFAULT_REPORT_INSTRUCTION)
            columns["answer"].append(text)
            columns["answer_type"].append("report")
            columns["image_path"].append(str(folder / f"{dicom}.jpg"))
            columns["subject_id"].append(study["subject_id"])
            columns["study_id"].append(study_id)
            columns["view_position"].append(views.get(dicom, ""))
            if opts.views != "first":
                columns["images"].append([str(root / folder / f"{d}.jpg") for d in study["dicoms"]])
        if skipped:
            log.info("mimic_cxr %s: skipped %d of %d studies without a %s section", split, skipped, len(studies), opts.section.upper())
        return columns, images

    def size_report(self, data_dir: str | Path | None = None, **options: Any) -> tuple[dict[str, int], dict[str, str]] | None:
        """Items per split and what the bad-record policy skipped; for the jpg layout, studies in the split CSV
        before skipping those lacking the section."""
        opts = L.parse_options(self.name, self.options_class, {**self.options, **options})
        root = self.data_dir(data_dir)
        if root is None or not root.is_dir():
            return None
        try:
            layout = self.layout(root, opts)
        except DataError:
            return None
        skipped: dict[str, str] = {}
        if layout == "r2gen":
            counts, skipped = r2gen_size_report(annotation_path(root, opts.annotation), root / "images", opts.strict,
                                                ("subject_id", "study_id"))
        else:
            studies = _studies(root / SPLIT_CSV)
            counts = {name: sum(s["split"] == key for s in studies.values()) for name, key in JPG_SPLITS.items()}
        return {k: min(v, opts.sample) if opts.sample else v for k, v in counts.items()}, skipped


def _sample(columns: dict[str, list], images: list, opts: MimicOptions, split: str):
    """Keep ``opts.sample`` items drawn with ``opts.seed``, in their original order."""
    total = len(columns["id"])
    if opts.sample is None:
        return columns, images
    if opts.sample > total:
        raise HarnessError(f"task 'mimic_cxr': sample={opts.sample} exceeds the {total} items of split '{split}'")
    keep = sorted(random.Random(opts.seed).sample(range(total), opts.sample))
    return {name: [values[i] for i in keep] for name, values in columns.items()}, [images[i] for i in keep]


TASK = MimicCXRTask(
    name="mimic_cxr",
    family="report",
    # 1.1: the CheXpert metrics read reports by labeler 2 (issue 26's report-level rules) and the text pairs'
    # fact-checks with it; 1.0 clinical scores and pairs are not comparable
    version="1.1",
    folder="mimic_cxr",
    splits=("train", "validation", "test"),
    metrics=L.REPORT_METRICS,
    description="MIMIC-CXR chest X-ray report generation (R2Gen or MIMIC-CXR-JPG layout); paper: 200 sampled test reports",
    citation=CITATION,
)
