"""``--report-to``: a missing tracker package is a one-line exit 2; TRL's scalar names; evaluation metrics
with their intervals logged to the training's tracker run."""

from __future__ import annotations

import importlib.util
import json

import pytest

from harness.cli import main
from harness.core.errors import HarnessError
from harness.training import trackers
from harness.training.config import TrainConfig

TRL_SCALARS = {"train/loss", "train/rewards/chosen", "train/rewards/rejected", "train/rewards/accuracies",
               "train/rewards/margins", "train/logps/chosen", "train/logps/rejected", "train/learning_rate",
               "train/grad_norm", "train/epoch"}


def _without(monkeypatch, missing: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a))


@pytest.mark.parametrize("name,extra", [("wandb", "wandb"), ("mlflow", "mlflow"), ("tensorboard", "tracking")])
def test_a_tracker_without_its_package_is_refused_in_one_line(monkeypatch, name, extra):
    _without(monkeypatch, name)
    with pytest.raises(HarnessError) as error:
        TrainConfig(report_to=name)
    message = str(error.value)
    assert "\n" not in message and f"--report-to {name} needs the {name} package" in message
    assert f"pip install 'medpo-harness[{extra}]'" in message


def test_an_unknown_tracker_is_refused_in_one_line():
    with pytest.raises(HarnessError, match="report_to must be one of none, tensorboard, wandb, mlflow, got 'comet'"):
        trackers.check_tracker("comet")


@pytest.mark.parametrize("command", [["train", "--method", "dpo", "--model", "tiny", "--pairs", "missing.jsonl"],
                                     ["run", "--method", "dpo", "--model", "tiny"]])
def test_the_cli_exits_2_with_one_line_before_anything_loads(monkeypatch, capsys, tmp_path, command):
    _without(monkeypatch, "wandb")
    assert main([*command, "--report-to", "wandb"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip().splitlines() == [
        "error: --report-to wandb needs the wandb package, which is not installed: pip install 'medpo-harness[wandb]'"]


def test_eval_scalars_name_each_value_and_its_interval():
    rows = [{"task": "vqa_rad", "metric": "closed_accuracy", "value": 0.75, "ci_low": 0.7, "ci_high": 0.8, "n": 272},
            {"task": "vqa_rad", "metric": "open_recall", "value": 0.5, "ci_low": None, "ci_high": None, "n": 179}]
    assert trackers.eval_scalars(rows) == {
        "eval/vqa_rad/closed_accuracy": 0.75, "eval/vqa_rad/closed_accuracy/ci_low": 0.7,
        "eval/vqa_rad/closed_accuracy/ci_high": 0.8, "eval/vqa_rad/open_recall": 0.5}


def test_log_evaluation_does_nothing_without_a_tracker(tmp_path):
    assert trackers.log_evaluation(tmp_path, [{"task": "t", "metric": "m", "value": 1.0}]) is False


@pytest.mark.slow  # a whole harness run: base evaluation, pairs, 2 training steps, evaluation
def test_a_tiny_run_logs_trl_named_training_and_eval_scalars_to_tensorboard(tmp_path):
    """``harness run`` end to end: its TensorBoard run holds the training curves under TRL's names and, at
    the last step, every stored evaluation metric with its interval. The base is an untrained tiny model
    folder (built in a second): what is checked is where the numbers go, not how good they are."""
    pytest.importorskip("tensorboard", reason="--report-to tensorboard needs the tensorboard package")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from harness.experiments.pipeline import RunConfig, run
    from harness.models.tiny import build_tiny_model
    from harness.results.store import ResultsStore

    base = build_tiny_model(tmp_path / "base")
    config = RunConfig(method="dpo", model=str(base), tasks=("synth_vqa",), train_limit=8, eval_limit=4,
                       eval_batch_size=4, text_pairs="injector", store=str(tmp_path / "store.sqlite"),
                       train={"batch_size": 4, "max_steps": 2, "max_length": 256, "report_to": "tensorboard",
                              "run_name": "tb"})
    outcome = run(config)
    train_dir = outcome.run_dir / "train"
    assert json.loads((train_dir / "tracker.json").read_text())["report_to"] == "tensorboard"
    accumulator = EventAccumulator(str(train_dir / "tb"))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    assert TRL_SCALARS <= tags
    assert not {"train/reward_accuracy", "train/margin", "train/lr"} & tags  # the old names are gone
    history = [json.loads(line) for line in (train_dir / "metrics.jsonl").read_text().splitlines()]
    assert [e.value for e in accumulator.Scalars("train/rewards/accuracies")] == pytest.approx(
        [h["rewards/accuracies"] for h in history], rel=1e-6)
    assert [e.value for e in accumulator.Scalars("train/epoch")] == pytest.approx([0.5, 1.0])  # 8 pairs, 4/step

    stored = ResultsStore(tmp_path / "store.sqlite").results(run_ids=[outcome.run_id])
    assert stored
    for row in stored:
        name = f"eval/{row['task']}/{row['metric']}"
        for tag, expected in ((name, row["value"]), (f"{name}/ci_low", row["ci_low"]),
                              (f"{name}/ci_high", row["ci_high"])):
            if expected is None:  # a metric without an interval logs its value alone
                assert tag not in tags
                continue
            (event,) = accumulator.Scalars(tag)
            assert event.step == 2 and event.value == pytest.approx(expected, rel=1e-6)
    assert {"eval/synth_vqa/closed_accuracy", "eval/synth_vqa/closed_accuracy/ci_low",
            "eval/synth_vqa/closed_accuracy/ci_high"} <= tags


def test_a_resumed_training_reopens_its_tracker_run(tmp_path):
    (tmp_path / "tracker.json").write_text(json.dumps({"report_to": "wandb", "run_name": "r", "id": "abc123"}))
    assert trackers.init_kwargs("wandb", tmp_path) == {"wandb": {"id": "abc123", "resume": "allow"}}
    assert trackers.init_kwargs("mlflow", tmp_path) == {}  # another tracker now: a new run there
    (tmp_path / "tracker.json").write_text(json.dumps({"report_to": "mlflow", "run_name": "r", "id": "f00"}))
    assert trackers.init_kwargs("mlflow", tmp_path) == {"mlflow": {"run_id": "f00"}}
    assert trackers.init_kwargs("wandb", tmp_path / "fresh") == {}
