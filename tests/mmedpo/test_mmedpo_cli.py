"""``harness curate``: builds and caches pairs; bad options are one-line errors."""

from __future__ import annotations

import json

from harness.cli import main


def test_curate_command_builds_then_reuses_pairs(tmp_path, capsys):
    argv = ["curate", "--method", "mmedpo", "--task", "synth_vqa", "--output-dir", str(tmp_path),
            "--option", "max_items=12", "--format", "json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert first["pairs"] == first["text"] + first.get("visual", 0) and first["text"] == 12
    assert len(list(tmp_path.glob("mmedpo-*/pairs.jsonl"))) == 1
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)[0] == first


def test_curate_command_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["curate", "--method", "mmedpo", "--task", "synth_vqa", "--output-dir", str(tmp_path),
                 "--option", "weighting=zscore"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: mmedpo option 'weighting'") and "\n" not in err
    assert main(["curate", "--method", "mmedpo", "--task", "synth_vqa", "--option", "novalue"]) == 2


def test_list_options(capsys):
    assert main(["curate", "--method", "mmedpo", "--task", "synth_vqa", "--list-options", "--format", "json"]) == 0
    names = {row["option"] for row in json.loads(capsys.readouterr().out)}
    assert {"noise", "weighting", "localizer", "judges", "ablation"} <= names
