"""One policy for bad records: skip with a warning and a count, or refuse with --strict / strict=True / HARNESS_STRICT.

The fixture reproduces the real SLAKE 1.0 train.json defect: an English record with an empty answer
(qid 1622, "Does the picture contain liver?").
"""

from __future__ import annotations

import json
import logging

import pytest
from task_layouts import one_line_error, slake_record, write_json

from harness.cli import main
from harness.core.errors import DataError
from harness.tasks.slake import TASK


@pytest.fixture
def slake_with_empty_answer(slake_dir):
    empty = {**slake_record(1622, 3, "Does the picture contain liver?", ""), "location": "Abdomen",
             "content_type": "Organ"}
    records = [slake_record(1, 3, "Is this a CT?", "Yes"), empty, slake_record(2, 3, "是CT吗?", "是", lang="zh")]
    write_json(slake_dir / "train.json", records)
    return slake_dir


def test_load_skips_the_record_with_a_warning(slake_with_empty_answer, caplog):
    with caplog.at_level(logging.WARNING):
        train = TASK.load("train", slake_with_empty_answer.parent)
    assert train["id"] == ["1"]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "slake train: 1 skipped: empty answer" in warning
    assert "train.json, record 1 (qid 1622), field 'answer'" in warning


def test_harness_tasks_shows_the_count(slake_with_empty_answer, capsys):
    assert main(["tasks", "--data-dir", str(slake_with_empty_answer.parent)]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("slake "))
    assert "train=1 (1 skipped: empty answer)" in line and "test=3" in line
    assert main(["tasks", "--data-dir", str(slake_with_empty_answer.parent), "--format", "json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["name"] == "slake")
    assert row["sizes"] == {"train": 1, "validation": 1, "test": 3}
    assert row["skipped"] == {"train": "1 skipped: empty answer"}


def test_strict_refuses_with_one_line(slake_with_empty_answer, capsys, monkeypatch):
    assert main(["tasks", "--data-dir", str(slake_with_empty_answer.parent), "--strict"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ")
    assert "train.json, record 1 (qid 1622), field 'answer': empty value" in err
    with pytest.raises(DataError) as exc:
        TASK.load("train", slake_with_empty_answer.parent, strict=True)
    one_line_error(exc, "train.json", "qid 1622", "field 'answer'", "empty value")
    # the environment variable reaches every command that loads a task
    monkeypatch.setenv("HARNESS_STRICT", "1")
    with pytest.raises(DataError):
        TASK.load("train", slake_with_empty_answer.parent)


def test_a_split_with_only_bad_records_is_an_error(slake_with_empty_answer):
    write_json(slake_with_empty_answer / "validate.json",
               [{**slake_record(50, 3, "Which organ?", "Lung", answer_type="OPEN"), "question": " "}])
    with pytest.raises(DataError) as exc:
        TASK.load("validation", slake_with_empty_answer.parent)
    one_line_error(exc, "validate.json", "no usable records")
