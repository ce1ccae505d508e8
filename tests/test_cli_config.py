"""``--config FILE.yaml`` (harness.cli.config_file): the file's flags, flags given on the command line winning,
the effective config saved with a run and read back to the same values, one-line errors naming the file and
key, and the old flag spellings kept as warned aliases."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from harness.cli import build_parser, main
from harness.cli.config_file import effective_config, parse_command_line, save_effective_config
from harness.core.errors import HarnessError

# Per command: flags that differ from every default (so a value that failed to round-trip would show).
COMMAND_FLAGS = {
    "run": ["run", "--method", "dpo", "--model", "tiny", "--tasks", "synth_vqa", "--train-limit", "12",
            "--eval-limit", "all", "--option", "beta=0.2", "--option", "ablation=none", "--lr", "2e-4",
            "--no-lora", "--max-steps", "3", "--task-option", "synth_vqa.test_size=20", "--text-pairs", "injector"],
    "study": ["study", "--methods", "base,dpo,dpo[beta=0.5]", "--seed-list", "0,7", "--lr-rule", "fixed",
              "--model", "tiny", "--tasks", "synth_vqa,synth_report", "--eval-limit", "5", "--n-boot", "500",
              "--task-option", "synth_report.test_size=30"],
    "eval": ["eval", "--model", "tiny", "--tasks", "synth_vqa", "synth_report", "--limit", "7", "--split", "val",
             "--image-ablation", "blank", "--batch-size", "3", "--task-option", "synth_vqa.test_size=9"],
    "train": ["train", "--method", "dpo", "--model", "tiny", "--pairs", "pairs.jsonl", "--output-dir", "out",
              "--option", "beta=0.3", "--limit", "4", "--precision", "bf16", "--schedule", "linear",
              "--gradient-checkpointing"],
    "curate": ["curate", "--method", "mmedpo", "--task", "synth_vqa", "--option", "text_generator=rules",
               "--seed", "4", "--text-pairs", "injector", "--task-option", "synth_vqa.train_size=10"],
    "sft": ["sft", "--model", "tiny", "--tasks", "synth_vqa", "--output-dir", "out", "--epochs", "2"],
}


def _parse(argv):
    return parse_command_line(build_parser(), argv)


def _write(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


@pytest.mark.parametrize("command", sorted(COMMAND_FLAGS))
def test_a_saved_config_reruns_to_the_same_effective_config(command, tmp_path):
    first = _parse(COMMAND_FLAGS[command])
    saved = save_effective_config(first, tmp_path, command)
    assert saved.name == "config.yaml" and saved.read_text().startswith(f"# harness {command}:")
    again = _parse([command, "--config", str(saved)])
    assert effective_config(again) == effective_config(first)
    # the file holds what the flags said, under the config dataclass's field names
    data = yaml.safe_load(saved.read_text())
    if command == "run":
        assert data["options"] == {"beta": "0.2", "ablation": "none"} and data["lora"] is False
        assert data["eval_limit"] is None and data["train_limit"] == 12 and data["lr"] == 2e-4
        assert data["task_options"] == {"synth_vqa": {"test_size": "20"}}
        assert "run_id" not in data and "format" not in data  # how to run, not what
    if command == "eval":
        assert (data["limit"], data["split"], data["image_ablation"], data["tasks"]) == \
            (7, "val", "blank", ["synth_vqa", "synth_report"])


def test_run_from_a_config_file_builds_the_run_config_the_flags_build(tmp_path):
    from harness.cli.commands.run import run_config_from_args
    from harness.experiments.pipeline import config_dict

    config = _write(tmp_path / "run.yaml", """
method: dpo
model: tiny
tasks: [synth_vqa]
train_limit: 12
eval_limit: all
options: {beta: 0.2, ablation: none}
task_options:
  synth_vqa: {test_size: 20}
text_pairs: injector
train:            # a section: its keys are flags too
  lr: 2.0e-4
  lora: false
  max-steps: 3
""")
    from_file = run_config_from_args(_parse(["run", "--config", str(config)]), options={})
    from_flags = run_config_from_args(_parse(COMMAND_FLAGS["run"]), options={})
    assert config_dict(from_file) == config_dict(from_flags)
    assert from_file.task_options == {"synth_vqa": {"test_size": 20}}  # typed by the task's options class
    assert from_file.train.lora is False and from_file.train.max_steps == 3 and from_file.eval_limit is None


@pytest.mark.parametrize("command, file, flags, expect", [
    ("run", {"method": "dpo", "eval_limit": 4, "train_limit": 8, "option": {"beta": 0.2, "ablation": "none"}},
     ["--eval-limit", "9", "--option", "beta=0.5"],
     {"method": "dpo", "eval_limit": 9, "train_limit": 8, "options": ["beta=0.5"]}),
    ("study", {"methods": "base,dpo", "seeds": 2, "reference": "base", "lr_rule": "fixed"},
     ["--seeds", "5"], {"methods": "base,dpo", "seeds": 5, "reference": "base", "lr_rule": "fixed"}),
    ("eval", {"model": "tiny", "tasks": ["synth_vqa"], "limit": 3, "batch_size": 2},
     ["--tasks", "synth_report", "--limit", "4"],
     {"model": "tiny", "tasks": ["synth_report"], "cfg_limit": 4, "cfg_batch_size": 2}),
    ("train", {"method": "dpo", "model": "tiny", "pairs": "p.jsonl", "lr": 1e-5, "set": {"beta": 0.1},
               "output_dir": "a"},
     ["--lr", "3e-5", "--output-dir", "b"],
     {"method": "dpo", "lr": 3e-5, "options": ["beta=0.1"], "output_dir": Path("b")}),
    ("curate", {"method": "mmedpo", "task": "synth_vqa", "seed": 3, "option": ["noise=global"]},
     ["--seed", "8", "--task", "synth_report"],
     {"method": "mmedpo", "task": "synth_report", "seed": 8, "option": ["noise=global"]}),
])
def test_flags_on_the_command_line_win_over_the_file(command, file, flags, expect, tmp_path):
    config = _write(tmp_path / f"{command}.yaml", file)
    args = _parse([command, "--config", str(config), *flags])
    assert {key: getattr(args, key) for key in expect} == expect


def test_a_repeatable_flag_given_on_the_command_line_replaces_the_files_items(tmp_path):
    config = _write(tmp_path / "run.yaml", {"option": {"beta": 0.2, "ablation": "no-visual"},
                                             "task_option": {"synth_vqa": {"test_size": 5}}})
    args = _parse(["run", "--config", str(config), "--option", "beta=0.5"])
    assert args.options == ["beta=0.5"] and args.task_options == ["synth_vqa.test_size=5"]


@pytest.mark.parametrize("content, message", [
    ({"method": "dpo", "eval_limt": 3}, r"run\.yaml: unknown key 'eval_limt'; did you mean 'eval_limit'\?"),
    ({"train": {"lrr": 1}}, r"run\.yaml: unknown key 'train\.lrr'; did you mean 'lr'\?"),
    ({"eval_batch_size": "many"}, r"run\.yaml: key 'eval_batch_size': expected int, got 'many'"),
    ({"schedule": "cubic"}, r"run\.yaml: key 'schedule': 'cubic' is not one of cosine, linear, constant"),
    ({"lora": "maybe"}, r"run\.yaml: key 'lora': expected true or false, got 'maybe'"),
    ({"run_id": "x"}, r"run\.yaml: unknown key 'run_id'"),  # how to run, not what: never from a file
    ("method: dpo\ntasks: [synth_vqa\n", r"run\.yaml: line 3: not valid YAML"),
    ("- method\n- dpo\n", r"run\.yaml: expected a mapping of flag names to values, found a YAML list"),
])
def test_bad_config_files_are_one_line_errors_naming_the_file_and_key(content, message, tmp_path, capsys):
    config = _write(tmp_path / "run.yaml", content)
    with pytest.raises(HarnessError, match=message):
        _parse(["run", "--config", str(config)])
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "run.yaml" in err


def test_a_missing_config_file_is_one_line(tmp_path, capsys):
    assert main(["eval", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err.strip() == f"error: --config {tmp_path / 'nope.yaml'}: file not found"


def test_the_old_spellings_still_work_and_warn_once(tmp_path, capsys, caplog):
    args = _parse(["train", "--method", "dpo", "--model", "tiny", "--pairs", "p.jsonl", "--set", "beta=0.2",
                   "--option", "gamma=1", "--set", "x=1", "--output", "old"])
    assert args.options == ["beta=0.2", "gamma=1", "x=1"] and args.output_dir == Path("old")
    sft = _parse(["sft", "--model", "tiny", "--tasks", "synth_vqa", "--output", "o2"])
    assert sft.output_dir == Path("o2")
    # hidden: not in the help, the new spelling is
    helptext = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "--output-dir" in helptext and "--option" in helptext and "--set" not in helptext
    assert "--output " not in helptext and "--output\n" not in helptext
    with caplog.at_level(logging.WARNING, logger="harness.cli.config_file"):
        code = main(["train", "--method", "dpo", "--model", "tiny", "--pairs", str(tmp_path / "none.jsonl"),
                     "--set", "beta=0.2", "--set", "x=1", "--output", str(tmp_path / "o")])
    assert code == 2  # the pair file is missing: the flags parsed, the command ran
    warnings = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert warnings == ["--output is deprecated and will be removed in the next version: use --output-dir",
                        "--set is deprecated and will be removed in the next version: use --option"]


def test_a_saved_config_never_holds_the_hidden_alias(tmp_path):
    args = _parse(["train", "--method", "dpo", "--model", "tiny", "--pairs", "p.jsonl", "--set", "beta=0.2"])
    data = effective_config(args)
    assert data["options"] == {"beta": "0.2"} and "set" not in data and "output" not in data


def test_the_run_command_saves_its_effective_config_in_the_run_folder(tmp_path, monkeypatch):
    """The run folder holds config.yaml as soon as the run id is settled (before any model loads), and a run
    started from it saves the same file: the acceptance check, without training (the slow test trains)."""
    import harness.experiments.pipeline as pipeline
    from harness.core.paths import runs_dir

    saved: dict[str, str] = {}

    def stop_after_start(config, *, run_id=None, allow_changed=False, on_start=None):
        on_start(run_id, False)
        saved[run_id] = (runs_dir() / run_id / "config.yaml").read_text()
        raise HarnessError("stopped by the test after the run started")

    monkeypatch.setattr(pipeline, "run", stop_after_start)
    flags = ["run", "--method", "dpo", "--model", "tiny", "--tasks", "synth_vqa", "--train-limit", "8",
             "--eval-limit", "4", "--max-steps", "1", "--task-option", "synth_vqa.test_size=20"]
    assert main([*flags, "--run-id", "cfg-first"]) == 2
    assert not (runs_dir() / "cfg-first").exists()  # failed before its first stage: no folder left behind
    first = tmp_path / "config.yaml"
    first.write_text(saved["cfg-first"])
    assert main(["run", "--config", str(first), "--run-id", "cfg-second"]) == 2
    assert yaml.safe_load(saved["cfg-second"]) == yaml.safe_load(saved["cfg-first"])
    assert yaml.safe_load(saved["cfg-first"])["task_options"] == {"synth_vqa": {"test_size": "20"}}
    # a run killed before its first stage leaves only config.yaml: its id still starts (resumes) that run
    killed = runs_dir() / "cfg-killed"
    killed.mkdir(parents=True)
    (killed / "config.yaml").write_text(saved["cfg-first"])
    assert pipeline.start_run(pipeline.RunConfig(method="dpo"), "cfg-killed") == ("cfg-killed", False)


@pytest.mark.slow
def test_a_run_from_its_saved_config_equals_the_run_from_flags(tmp_path, tiny_model_dir):
    """Acceptance: ``harness run --config RUN/config.yaml`` is the run the flags gave (same effective config,
    same settings fingerprint), on the tiny model with the smallest limits."""
    from harness.core.io import read_json
    from harness.core.paths import runs_dir

    flags = ["run", "--method", "dpo", "--model", "tiny", "--tasks", "synth_vqa", "--train-limit", "8",
             "--eval-limit", "4", "--max-steps", "1", "--batch-size", "4", "--text-pairs", "injector",
             "--store", str(tmp_path / "store.sqlite"), "--no-progress"]
    assert main([*flags, "--run-id", "flags-run"]) == 0
    first = runs_dir() / "flags-run"
    assert main(["run", "--config", str(first / "config.yaml"), "--run-id", "file-run", "--no-progress"]) == 0
    second = runs_dir() / "file-run"
    assert (second / "config.yaml").read_text() == (first / "config.yaml").read_text()
    assert read_json(second / "pipeline.json")["fingerprint"] == read_json(first / "pipeline.json")["fingerprint"]


@pytest.mark.parametrize("command", ["run", "study"])
def test_the_example_config_files_are_valid_runs(command):
    """examples/configs/*.yaml (docs/config.md) parse, and their run settings pass every check a run makes
    before a model loads (method, options, tasks, task options)."""
    from harness.cli.commands.run import run_config_from_args
    from harness.experiments.pipeline import check_config

    example = Path(__file__).resolve().parents[1] / "examples" / "configs" / f"{command}.yaml"
    args = _parse([command, "--config", str(example)])
    config = run_config_from_args(args, **({"options": {}} if command == "run" else {"method": "dpo", "options": {}}))
    check_config(config)
    assert config.model == "tiny" and config.task_options["synth_vqa"]["test_size"] == 200
    if command == "run":
        assert args.options == ["beta=0.1"] and config.train.max_steps == 10
    else:
        assert (args.methods, args.seed_list, args.steps) == ("base,dpo,mmedpo", "0,1", 10)
