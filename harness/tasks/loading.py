"""The public toolkit for writing a task loader: the stable subset of the helpers the built-in tasks use.

A task plugin (docs/plugins.md, "Adding a task") imports from here, never from ``harness.tasks._loading``:
the names below keep their meaning across releases, while the private module may change with the built-in
loaders. Each helper turns bad data into a one-line ``DataError`` naming the file, the record and the field.

Options:
    ``LoadOptions`` (the ``check_images`` and ``strict`` options every loader takes; subclass it for your
    own), ``option_field`` (a field with its help text and choices), ``parse_options`` (keyword options ->
    your options dataclass; unknown names and bad values are one-line errors).
Reading records:
    ``read_records`` (a JSON list of objects), ``read_split_dict`` (``{"train": [...], "test": [...]}``),
    ``get_field`` (one required, typed, non-empty field), ``vqa_row`` (id, image, question, answer and
    answer type of one VQA record), ``answer_type`` ('closed' / 'open'), ``text`` (metadata as a string).
Bad records:
    ``BadRecords`` (skip and count, or with ``strict`` raise the first), ``split_report`` and
    ``SizesFromReport`` (items per split and what was skipped, for ``harness tasks``).
Images and the dataset:
    ``check_image_files`` (missing files in one line; ``check_images='decode'`` also decodes them),
    ``verify_images`` (decode the rows an evaluation will use), ``build_dataset`` (the ``datasets.Dataset``
    with lazily decoded image columns).
Metric lists:
    ``VQA_METRICS``, ``REPORT_METRICS`` (what the built-in VQA and report tasks score).

Importing this module imports neither ``datasets`` nor torch: ``harness tasks`` stays fast with plugins.
"""

from __future__ import annotations

from harness.core.errors import DataError
from harness.tasks._loading import (
    CHECK_IMAGES,
    REPORT_METRICS,
    VQA_METRICS,
    BadRecords,
    LoadOptions,
    SizesFromReport,
    answer_type,
    build_dataset,
    check_image_files,
    get_field,
    option_field,
    parse_options,
    read_records,
    read_split_dict,
    split_report,
    text,
    verify_images,
    vqa_row,
)
from harness.tasks.base import ANSWER_TYPES, Task

__all__ = [
    "ANSWER_TYPES",
    "CHECK_IMAGES",
    "REPORT_METRICS",
    "VQA_METRICS",
    "BadRecords",
    "DataError",
    "LoadOptions",
    "SizesFromReport",
    "Task",
    "answer_type",
    "build_dataset",
    "check_image_files",
    "get_field",
    "option_field",
    "parse_options",
    "read_records",
    "read_split_dict",
    "split_report",
    "text",
    "verify_images",
    "vqa_row",
]
