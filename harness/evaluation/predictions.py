"""Per-sample predictions on disk: resumable part files and their merge.

Each process appends its finished batches to ``<pass>.part-<rank>.jsonl`` and fsyncs after every batch,
so a crash loses at most the batch in flight. On (re)start every process reads all part files of the pass
(whatever world size wrote them) and skips the ids already answered; the main process then merges the
parts into ``<pass>.jsonl`` in dataset order, keeping the first answer of any id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.core.io import end_on_a_line, read_jsonl, write_jsonl

RECORD_FIELDS = ("id", "question", "answer_type", "prediction", "reference", "metadata")


def make_record(sample: dict[str, Any], prediction: str, metadata_columns: Sequence[str]) -> dict[str, Any]:
    """One predictions line: the fields every consumer reads, plus the task's metadata columns."""
    return {
        "id": str(sample["id"]),
        "question": sample["question"],
        "answer_type": sample["answer_type"],
        "prediction": prediction,
        "reference": str(sample["answer"]),
        "metadata": {col: _jsonable(sample.get(col)) for col in metadata_columns},
    }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def part_path(directory: Path, pass_name: str, rank: int) -> Path:
    return directory / f"{pass_name}.part-{rank}.jsonl"


def merged_path(directory: Path, pass_name: str) -> Path:
    return directory / f"{pass_name}.jsonl"


def read_parts(directory: Path, pass_name: str) -> dict[str, dict[str, Any]]:
    """Every finished prediction of a pass, by id (first wins), from all its part files."""
    done: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob(f"{pass_name}.part-*.jsonl")):
        for record in read_jsonl(path, skip_partial_last=True):  # appended per batch: a crash cuts the last
            done.setdefault(str(record["id"]), record)
    return done


def append_batch(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append a batch of records and fsync once: the unit a crash can lose is one batch (its cut-off last
    line is cut before the next append, ``harness.core.io.end_on_a_line``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    end_on_a_line(path)
    with open(path, "a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def shard(items: Sequence[Any], rank: int, world_size: int) -> list[Any]:
    """The strided share of ``items`` for one process: every ``world_size``-th item from ``rank``.

    Striding (not contiguous blocks) balances answer types and lengths across processes.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of {world_size} processes")
    return list(items[rank::world_size])


def merge(directory: Path, pass_name: str, order: Sequence[str]) -> list[dict[str, Any]]:
    """Merge the part files into ``<pass>.jsonl`` in the order of ``order`` (ids); returns the records.

    Ids outside ``order`` (from an earlier run with a larger limit) stay in the part files but are left
    out; a missing id raises, since scoring a partial set would silently change the numbers.
    """
    done = read_parts(directory, pass_name)
    missing = [i for i in order if i not in done]
    if missing:
        raise RuntimeError(f"{pass_name}: {len(missing)} predictions missing after generation (first: {missing[0]})")
    records = [done[i] for i in order]
    write_jsonl(merged_path(directory, pass_name), records)
    return records
