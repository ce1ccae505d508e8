"""Helpers shared by the dataset loaders: typed options, record checks, image checks, dataset building.

Every check here turns bad data into a one-line ``DataError`` naming the file, the record and the field,
so a user sees what to fix instead of a traceback.

One policy for bad *records* (a missing, empty or mistyped field in one record of an otherwise good file,
such as the English SLAKE train record with an empty answer): the loader skips the record, logs one
warning per split with the count and the first record's error, and ``harness tasks`` shows the count
(``train 4918 (1 skipped: empty answer)``). With the task option ``strict=True``, ``harness tasks --strict``
or the environment variable ``HARNESS_STRICT=1`` (which every command that loads a task honours) the first
bad record stops the load with its one-line error instead. Bad *files* (not JSON, wrong layout, missing
images) always stop the load. Nothing in this module imports ``datasets`` or torch at
import time: ``harness tasks`` imports the task modules only to count items.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core.errors import DataError
from harness.core.io import read_json
from harness.core.options import TRUE, option_field, options_help  # noqa: F401  (re-exported for the loaders)
from harness.core.options import parse_options as _parse_options

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)

VQA_METRICS = (
    "closed_accuracy", "closed_accuracy_llava_med", "open_recall", "open_recall_llava_med", "open_exact_match",
    "open_f1",
)
REPORT_METRICS = (
    "bleu", "bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "meteor", "cider",
    "chexpert_f1_micro", "chexpert_f1_macro", "hallucination_rate",
)

# How much loading checks the image files: "exists" (default) stats every image the split refers to,
# "decode" also opens and verifies each one with PIL, "none" trusts the annotation (for folders shipped
# without images, such as the public IU-Xray annotation).
CHECK_IMAGES = ("exists", "decode", "none")


@dataclasses.dataclass
class LoadOptions:
    """Options every loader accepts."""

    check_images: str = option_field(
        "exists",
        "how to check image files on load: 'exists' (stat each), 'decode' (also open and verify each), "
        "'none' (no check; True/False mean 'exists'/'none')",
        CHECK_IMAGES,
    )
    strict: bool = option_field(
        False,
        "refuse a split with a bad record (missing, empty or mistyped field) instead of skipping it with a "
        "warning and a count; the environment variable HARNESS_STRICT=1 turns this on everywhere",
    )

    def __post_init__(self) -> None:
        self.strict = bool(self.strict) or strict_from_env()
        if self.check_images is True:
            self.check_images = "exists"
        elif self.check_images is False or self.check_images is None:
            self.check_images = "none"


STRICT_ENV = "HARNESS_STRICT"


def strict_from_env() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in TRUE


class BadRecords:
    """Bad records of one split: skipped and counted, or (``strict``) the first one raised.

    Use ``with bad.record():`` around the parsing of one record; a ``DataError`` inside is counted and
    swallowed (the caller then drops the record: check :attr:`failed`), or re-raised when strict.
    """

    def __init__(self, path: Path, strict: bool) -> None:
        self.path = Path(path)
        self.strict = strict
        self.counts: Counter[str] = Counter()
        self.first: DataError | None = None
        self.failed = False

    def record(self) -> _RecordGuard:
        self.failed = False
        return _RecordGuard(self)

    def add(self, error: DataError) -> None:
        if self.strict:
            raise error
        self.failed = True
        self.counts[reason(error)] += 1
        if self.first is None:
            self.first = error

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """``"1 skipped: empty answer"`` (reasons by count), or ``""``."""
        if not self.counts:
            return ""
        reasons = ", ".join(f"{n} {r}" if len(self.counts) > 1 else r for r, n in self.counts.most_common())
        return f"{self.total} skipped: {reasons}"

    def warn(self, task: str, split: str) -> None:
        if self.counts:
            log.warning("%s %s: %s (first: %s); strict=True or %s=1 refuses them instead",
                        task, split, self.summary(), self.first, STRICT_ENV)


def split_report(counted: Iterable[tuple[str, int, BadRecords]]) -> tuple[dict[str, int], dict[str, str]]:
    """``(items per split, {split: "N skipped: reason"})`` from ``(split, usable items, its BadRecords)``."""
    sizes, skipped = {}, {}
    for split, usable, bad in counted:
        sizes[split] = usable
        if bad.counts:
            skipped[split] = bad.summary()
    return sizes, skipped


class SizesFromReport:
    """Mixin for loaders whose ``size_report`` runs the bad-record policy: ``sizes`` is its first half."""

    def sizes(self, data_dir: str | Path | None = None, **options: Any) -> dict[str, int] | None:
        report = self.size_report(data_dir, **options)
        return None if report is None else report[0]


class _RecordGuard:
    def __init__(self, bad: BadRecords) -> None:
        self.bad = bad

    def __enter__(self) -> BadRecords:
        return self.bad

    def __exit__(self, kind, error, traceback) -> bool:
        if isinstance(error, DataError):
            self.bad.add(error)
            return True
        return False


def reason(error: DataError) -> str:
    """A short reason for counting: ``"empty answer"``, ``"missing qid"``, ``"bad answer_type"``."""
    text = str(error)
    name = error.field or "record"
    if text.endswith(": empty value"):
        return f"empty {name}"
    if text.endswith(": missing field"):
        return f"missing {name}"
    return f"bad {name}"


def parse_options(task: str, cls: type, options: dict[str, Any]):
    """Build the options dataclass ``cls`` from keyword options; unknown names and bad values are HarnessErrors."""
    return _parse_options(f"task '{task}'", cls, options)


def record_list(path: Path, data: Any, *, listing: str = "a JSON list of records", record: str = "a JSON object",
                kind: Any = None, where: Any = None) -> list[dict]:
    """``data`` read from ``path``, checked to be a list of objects: else a DataError naming the file and the
    record (``where(index)``, default the index). ``kind(value)`` names what was found instead (default: its
    JSON type); ``listing`` and ``record`` name what was expected."""
    kind = kind or (lambda value: f"a JSON {_json_type(value)}")
    if not isinstance(data, list):
        raise DataError(path, f"expected {listing}, found {kind(data)}")
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise DataError(path, f"expected {record}, found {kind(item)}", record=index if where is None else where(index))
    return data


def read_records(path: Path) -> list[dict]:
    """A JSON file holding a list of objects (the VQA-RAD and SLAKE layouts)."""
    return record_list(path, read_json(path))


def read_split_dict(path: Path, split_key: str, expected: Sequence[str], data: Any = None) -> list[dict]:
    """The R2Gen layout ``{"train": [...], "val": [...], "test": [...]}``: the records under ``split_key``.

    ``data`` is the file's parsed content when the caller has already read it.
    """
    data = read_json(path) if data is None else data
    if not isinstance(data, dict):
        raise DataError(path, f"expected a JSON object with keys {_keys(expected)}, found a JSON {_json_type(data)}")
    if split_key not in data:
        raise DataError(
            path,
            f"no split key '{split_key}': keys found {_keys(data)}, expected {_keys(expected)}",
        )
    records = data[split_key]
    if not isinstance(records, list):
        raise DataError(path, f"split '{split_key}' must be a JSON list, found a JSON {_json_type(records)}")
    return record_list(path, records, where=lambda index: f"{split_key}[{index}]")


def get_field(path: Path, record: dict, name: str, where: object, *, kind: type | tuple[type, ...] = str) -> Any:
    """``record[name]``, which must be present, non-null and of ``kind``; else a DataError naming it."""
    if name not in record:
        raise DataError(path, "missing field", record=where, field=name)
    value = record[name]
    if value is None or (kind is not None and not isinstance(value, kind)) or isinstance(value, bool):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DataError(path, f"expected {expected}, found {value!r}", record=where, field=name)
    if isinstance(value, str) and not value.strip():
        raise DataError(path, "empty value", record=where, field=name)
    return value


def text(value: Any) -> str:
    """Metadata as a string ('' when absent): VQA-RAD and SLAKE mix ints and strings in places."""
    return "" if value is None else str(value).strip()


def vqa_row(path: Path, record: dict, index: int, image_field: str) -> dict[str, str]:
    """The fields every VQA loader reads from one record: id, where (for messages), image, question, answer, type.

    A missing or wrongly typed field raises the one-line ``DataError`` naming file, record and field.
    """
    qid = get_field(path, record, "qid", index, kind=(int, str))
    where = f"{index} (qid {qid})"
    return {
        "id": str(qid).strip(),
        "where": where,
        "image_path": get_field(path, record, image_field, where),
        "question": get_field(path, record, "question", where).strip(),
        "answer": str(get_field(path, record, "answer", where, kind=(str, int, float))).strip(),
        "answer_type": answer_type(path, record, where),
    }


def answer_type(path: Path, record: dict, where: object, name: str = "answer_type") -> str:
    """'closed' or 'open' from a VQA record; tolerates the stray case and spaces found in VQA-RAD."""
    raw = get_field(path, record, name, where)
    value = raw.strip().lower()
    if value not in ("closed", "open"):
        raise DataError(path, f"expected CLOSED or OPEN, found {raw!r}", record=where, field=name)
    return value


def check_image_files(
    items: Sequence[tuple[object, Path]],
    mode: str,
    source: Path,
    field_name: str,
) -> None:
    """Check the images a split refers to. ``items`` holds ``(record label, image path)`` pairs.

    Missing files raise one DataError for the first and count the rest, so a folder without images says
    so in one line instead of hundreds.
    """
    if mode == "none":
        return
    # Many questions share an image: check each file once, reporting its first record.
    unique: dict[Path, object] = {}
    for where, image in items:
        unique.setdefault(image, where)
    items = [(where, image) for image, where in unique.items()]
    missing = [(where, image) for where, image in items if not image.is_file()]
    if missing:
        where, image = missing[0]
        more = f" ({len(missing)} of {len(items)} image files missing)" if len(missing) > 1 else ""
        raise DataError(
            source,
            f"image file {image} not found{more}; pass check_images='none' to load without checking",
            record=where,
            field=field_name,
        )
    if mode == "decode":
        for where, image in _progress(items, "checking images"):
            verify_image_file(image, source=source, record=where, field=field_name)


def verify_image_file(image: Path, *, source: Path, record: object, field: str) -> None:
    """Open and fully decode one image (``harness.core.images``); a missing, corrupt or oversized file becomes a
    DataError on ``source`` naming the image."""
    from harness.core.images import read_image

    read_image(image, where=source, record=record, field=field)


def verify_images(dataset: datasets.Dataset, columns: Iterable[str] = ("image",), source: str = "dataset") -> None:
    """Decode the images of the rows actually used (after ``select``/``filter``), raising a DataError on the first bad one.

    Loading checks that files exist; this is the decode check for just the rows an evaluation will see.
    """
    import datasets

    for column in columns:
        if column not in dataset.column_names:
            continue
        raw = dataset.cast_column(column, _undecoded(dataset.features[column], datasets))
        for row_id, value in _progress(list(zip(raw["id"], raw[column])), f"decoding {column}"):
            for entry in value if isinstance(value, list) else [value]:
                if entry is None:
                    continue
                if entry.get("bytes"):  # a Hub snapshot's image: the encoded bytes, its path only a name
                    from harness.core.images import read_image

                    read_image(entry["bytes"], where=Path(source), record=row_id, field=column)
                    continue
                if entry.get("path") is None:
                    continue
                verify_image_file(Path(entry["path"]), source=Path(source), record=row_id, field=column)


def _undecoded(feature: Any, datasets_module: Any) -> Any:
    if isinstance(feature, datasets_module.Image):
        return datasets_module.Image(decode=False)
    return datasets_module.List(datasets_module.Image(decode=False))


def build_dataset(
    columns: dict[str, list],
    *,
    image_columns: Sequence[str] = ("image",),
    image_list_columns: Sequence[str] = (),
    source: Path,
) -> datasets.Dataset:
    """A ``datasets.Dataset`` whose image columns hold file paths, decoded lazily on access.

    Every other column is a string column. Ids must be unique within a split.
    """
    import datasets

    ids = columns["id"]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        duplicate = next(i for i in ids if i in seen or seen.add(i))
        raise DataError(source, "duplicate id within the split", record=duplicate, field="id")
    features = {}
    for name in columns:
        if name in image_columns:
            features[name] = datasets.Image()
        elif name in image_list_columns:
            features[name] = datasets.List(datasets.Image())
        else:
            features[name] = datasets.Value("string")
    return datasets.Dataset.from_dict(columns, features=datasets.Features(features))


def _progress(items: Sequence, desc: str):
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, disable=len(items) < 200, leave=False)


def _keys(keys: Iterable[str]) -> str:
    return ", ".join(repr(k) for k in keys) or "none"


def _json_type(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )

