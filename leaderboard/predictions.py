"""Per-sample predictions of a local run, read defensively for the run page.

The evaluation engine writes ``<predictions_dir>/predictions/<pass>.jsonl`` (``vqa_rad``,
``vqa_rad@blank``...) with ``id, question, answer_type, prediction, reference, metadata``. Files may be
partial, hand-edited or from an older layout: bad lines are skipped, missing fields are blank. Only
runs made on this machine have predictions; submissions never point at files.

Reports are right when the task can say so: on the synthetic report task a report is right when its
stated findings are exactly the case's (per-report finding F1 of 1); real report tasks have no right or
wrong. Images are looked up by path when the record names one, else in the task's own dataset (the
synthetic suite's generated images, a data folder the run's config or ``HARNESS_DATA`` names).
"""

from __future__ import annotations

import json
import logging
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

MAX_ROWS = 5000
IMAGE_KEYS = ("image", "image_path", "img_name", "image_name")
COLUMNS = ["ID", "Type", "Question", "Prediction", "Reference", "Correct"]


def prediction_files(run: dict[str, Any] | None) -> dict[str, Path]:
    """Pass name -> merged predictions file, for a local run with a predictions folder."""
    if not run or run.get("source") == "submission" or not run.get("predictions_dir"):
        return {}
    root = Path(run["predictions_dir"])
    if not root.is_dir():
        return {}
    files = sorted(p for p in root.rglob("*.jsonl") if ".part-" not in p.name)
    return {p.stem: p for p in files}


def read_records(path: Path, limit: int = MAX_ROWS) -> list[dict[str, Any]]:
    records = []
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if len(records) >= limit:
                    break
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
    except OSError as exc:
        log.warning("cannot read predictions %s: %s", path.name, exc)
    return records


def _norm(text: Any) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", str(text or "").lower()).split())


def is_correct(record: dict[str, Any]) -> bool | None:
    """Whether an answer counts as right: the record's own score when present, else a normalized match.

    Closed questions compare the first yes/no word; open ones accept the reference inside the answer
    (recall-style). Reports have no right or wrong: None.
    """
    for key in ("correct", "score"):
        if isinstance(record.get(key), (bool, int, float)):
            return bool(record[key])
    kind = str(record.get("answer_type") or "").strip().lower()
    pred, ref = _norm(record.get("prediction")), _norm(record.get("reference"))
    if kind == "report" or not ref:
        return None
    if kind == "closed":
        first = next((w for w in pred.split() if w in ("yes", "no")), "")
        return first == ref
    return ref == pred or f" {ref} " in f" {pred} "


EXACT_REPORT_METRIC = "finding_f1"  # a per-report score where 1 means every finding stated exactly


def mark_correct(records: list[dict[str, Any]], task: str) -> list[bool | None]:
    """``is_correct`` for each record, with reports scored by the task's exact-findings metric when it has one."""
    marks = [is_correct(r) for r in records]
    reports = [i for i, r in enumerate(records) if marks[i] is None
               and str(r.get("answer_type") or "").lower() == "report" and r.get("reference")]
    if reports:
        scores = _report_scores(task, [records[i] for i in reports])
        for i, score in zip(reports, scores or ()):
            marks[i] = None if score is None else score >= 1.0 - 1e-9
    return marks


def _report_scores(task: str, records: list[dict[str, Any]]) -> list[float | None] | None:
    try:
        from harness.metrics import compute_metrics
        from harness.tasks import get_task

        if EXACT_REPORT_METRIC not in get_task(task.split("@")[0]).metrics:
            return None
        result = compute_metrics([EXACT_REPORT_METRIC], [str(r.get("prediction", "")) for r in records],
                                 [str(r.get("reference", "")) for r in records], n_boot=0)[EXACT_REPORT_METRIC]
    except Exception as exc:  # no harness (an exported Space) or a broken plugin: no marks
        log.info("no per-report correctness for %s: %s", task, exc)
        return None
    scores = list(result.per_sample)
    return scores if len(scores) == len(records) else None


def table(records: list[dict[str, Any]], wrong_only: bool = False,
          marks: list[bool | None] | None = None) -> pd.DataFrame:
    rows = []
    for i, record in enumerate(records):
        correct = marks[i] if marks is not None else is_correct(record)
        if wrong_only and correct is not False:
            continue
        rows.append({
            "ID": str(record.get("id", "")), "Type": str(record.get("answer_type", "")),
            "Question": str(record.get("question", "")), "Prediction": str(record.get("prediction", "")),
            "Reference": str(record.get("reference", "")),
            "Correct": "" if correct is None else ("yes" if correct else "no"),
        })
    return pd.DataFrame.from_records(rows, columns=COLUMNS)


def image_path(record: dict[str, Any], run: dict[str, Any], task: str) -> Path | None:
    """The image file of a prediction, if it can be found: absolute, or under the run's data folders."""
    meta = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    name = next((str(src[k]) for src in (record, meta) for k in IMAGE_KEYS if src.get(k)), None)
    if not name:
        return None
    candidate = Path(name)
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    roots = []
    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    for key in ("data_dir", "image_dir"):
        if config.get(key):
            roots.append(Path(str(config[key])))
    task_dir = os.environ.get(f"HARNESS_DATA_{task.split('@')[0].upper()}")
    if task_dir:
        roots.append(Path(task_dir))
    if os.environ.get("HARNESS_DATA"):
        roots.append(Path(os.environ["HARNESS_DATA"]) / task.split("@")[0])
    roots.append(Path(run.get("predictions_dir") or "."))
    for root in roots:
        for sub in ("", "images", "imgs"):
            path = root / sub / candidate
            if path.is_file():
                return path
    return None


def load_image(record: dict[str, Any], run: dict[str, Any], task: str) -> tuple[Any, str]:
    """(PIL image or None, where it came from) for a prediction: by path, else from the task's dataset."""
    from harness.core.errors import DataError
    from harness.core.images import decoded, open_image, to_rgb

    path = image_path(record, run, task)
    if path is not None:
        try:
            return open_image(path), path.name
        except DataError as exc:  # unreadable or oversized: fall back on the task's dataset
            log.debug("cannot read %s: %s", path, exc)
    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    pipeline = config.get("pipeline") if isinstance(config.get("pipeline"), dict) else {}
    split = str((config.get("signature") or {}).get("split") or pipeline.get("eval_split") or "test")
    data_dir = pipeline.get("data_dir") or config.get("data_dir")
    index = _dataset_index(task.split("@")[0], split, str(data_dir) if data_dir else None)
    if index is None:
        return None, "not found"
    dataset, rows = index
    row = rows.get(str(record.get("id", "")))
    if row is None:
        return None, "not found"
    try:
        image = to_rgb(decoded(lambda: dataset[row]["image"]))
        return image, f"{task.split('@')[0]} {split} item {record.get('id')}"
    except Exception as exc:
        log.warning("cannot read the image of %s: %s", record.get("id"), exc)
        return None, "not found"


@lru_cache(maxsize=4)
def _dataset_index(task: str, split: str, data_dir: str | None) -> tuple[Any, dict[str, int]] | None:
    try:
        from harness.tasks import get_task

        dataset = get_task(task).load(split, data_dir=data_dir)
    except Exception as exc:  # no harness, no data: the sample shows without its image
        log.info("no dataset for %s/%s: %s", task, split, exc)
        return None
    return dataset, {str(item_id): i for i, item_id in enumerate(dataset["id"])}
