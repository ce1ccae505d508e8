import json
import subprocess
import sys

import pytest

import harness.tasks
from harness.cli import main
from harness.cli.commands.tasks import task_rows
from harness.core.registry import Registry

SIX = {"vqa_rad", "slake", "iu_xray", "mimic_cxr", "synth_vqa", "synth_report"}


def _json_rows(capsys, *argv):
    assert main(["tasks", "--format", "json", *argv]) == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)}


def test_lists_the_six_tasks_with_real_counts(shared_data, capsys):
    rows = _json_rows(capsys, "--data-dir", str(shared_data))
    assert SIX <= set(rows)
    assert rows["vqa_rad"]["sizes"]["test"] == 451
    assert rows["iu_xray"]["sizes"]["test"] == 590
    assert rows["slake"]["sizes"] is None and "no data" in rows["slake"]["note"]
    assert rows["vqa_rad"]["family"] == "vqa" and "open_recall" in rows["vqa_rad"]["metrics"]
    assert rows["iu_xray"]["splits"] == ["train", "validation", "test"] and "meteor" in rows["iu_xray"]["metrics"]
    options = {o["name"]: o for o in rows["vqa_rad"]["options"]}
    assert options["source"]["default"] == "auto" and "'hub:<repo>'" in options["source"]["help"]
    assert "path_vqa" in rows and rows["path_vqa"]["sizes"] is None and "no data" in rows["path_vqa"]["note"]


def test_table_format(shared_data, capsys):
    assert main(["tasks", "--data-dir", str(shared_data)]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:6] == ["name", "family", "splits", "sizes", "metrics", "version"]
    lines = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert SIX <= set(lines)
    assert "test=451" in lines["vqa_rad"] and "test=590" in lines["iu_xray"]


def test_data_dir_from_environment(vqa_rad_dir, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_DATA", str(vqa_rad_dir.parent))
    rows = _json_rows(capsys)
    assert rows["vqa_rad"]["sizes"] == {"train": 2, "test": 3}


def test_bad_entries_get_a_row_with_the_reason(vqa_rad_dir, monkeypatch):
    registry = Registry("task")
    registry.register_lazy("vqa_rad", "harness.tasks.vqa_rad:TASK")
    registry.register_lazy("broken", "harness.tasks.no_such_module:TASK")
    monkeypatch.setattr(harness.tasks, "TASKS", registry)
    (vqa_rad_dir / "testset.json").write_text("[", encoding="utf-8")
    rows = {row["name"]: row for row in task_rows(str(vqa_rad_dir.parent))}
    assert rows["broken"]["note"].startswith("error:") and "no_such_module" in rows["broken"]["note"]
    assert rows["vqa_rad"]["family"] == "vqa"
    assert "testset.json" in rows["vqa_rad"]["note"] and "malformed JSON" in rows["vqa_rad"]["note"]


@pytest.mark.parametrize("argv", [["--format", "json"], []])
def test_listing_does_not_import_torch_or_datasets(shared_data, argv):
    code = (
        "import sys, io, contextlib\n"
        "from harness.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['tasks', '--data-dir', {str(shared_data)!r}, *{argv!r}]) == 0\n"
        "print(sorted(m for m in ('torch', 'datasets', 'transformers') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
