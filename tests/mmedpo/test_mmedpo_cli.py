"""``harness curate``: builds and caches pairs; bad options are one-line errors."""

from __future__ import annotations

import json

from harness.cli import main


def test_curate_command_builds_then_reuses_pairs(tmp_path, capsys):
    argv = ["curate", "--method", "mmedpo", "--task", "synth_vqa", "--output-dir", str(tmp_path),
            "--option", "max_items=12", "--option", "text_generator=rules", "--format", "json"]
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


def test_curate_command_prints_weight_quartiles_sources_and_skips(tmp_path, capsys):
    argv = ["curate", "--method", "mmedpo", "--task", "synth_vqa", "--output-dir", str(tmp_path),
            "--option", "max_items=16", "--option", "text_generator=rules", "--option", "visual_items=lesion"]
    assert main([*argv, "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    manifest = json.loads(next(tmp_path.glob("mmedpo-*/manifest.json")).read_text())
    weights = {w["kind"]: w for w in row["weights"]}
    assert set(weights) == {"text", "visual"} and weights["text"]["n"] == row["text"] == 16
    for kind, stats in weights.items():
        assert stats == {"kind": kind, **manifest["weights"][kind]}
        assert stats["min"] <= stats["q1"] <= stats["median"] <= stats["q3"] <= stats["max"]
    assert row["weight_min"] == min(w["min"] for w in weights.values())
    assert sum(s["pairs"] for s in row["sources"]) == row["pairs"]
    # visual_items=lesion: synthetic cases without a lesion have no region to noise: skipped, with the reason
    assert sum(s["items"] for s in row["skipped"] if s["kind"] == "visual") == 16 - row["visual"] > 0
    assert main(argv) == 0  # the table format prints the same three tables under headings
    out = capsys.readouterr().out
    assert "weights:" in out and "sources:" in out and "skipped:" in out and "median" in out


def test_curate_without_a_model_names_the_way_out(tmp_path, capsys):
    # the default text generator samples the target model (the paper); without --model it is a one-line error
    assert main(["curate", "--method", "mmedpo", "--task", "synth_vqa", "--output-dir", str(tmp_path),
                 "--option", "max_items=4"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--model" in err and "text_generator=rules" in err


def test_curate_publishes_the_default_pairs_manifest_and_error_mix(tmp_path, capsys):
    # a method without a builder, no --model: the injector's pairs (auto), their mix published beside them
    argv = ["curate", "--method", "dpo", "--task", "synth_report", "--output-dir", str(tmp_path)]
    assert main([*argv, "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["text_pairs"] == "injector" and manifest["error_mix"]["base"] is None
    mix = {(r["texts"], r["cases"]): r for r in row["error_mix"]}
    assert set(mix) == {("rejected", "lesion"), ("rejected", "normal")}
    lesion = mix["rejected", "lesion"]
    assert lesion["n"] == manifest["cases"]["lesion"] == sum(lesion[t] for t in manifest["error_mix"]["pairs"]["lesion"])
    assert mix["rejected", "normal"]["invented"] == mix["rejected", "normal"]["n"]  # a normal film: only invention
    assert sum(s["pairs"] for s in row["sources"]) == row["pairs"]
    assert main([*argv, "--text-pairs", "sample-and-judge"]) == 2  # sampling needs --model: one line
    assert "--model" in capsys.readouterr().err
