"""Resuming runs: the id names a run of the same kind and settings, and a killed evaluation resumes under it.

``harness run`` is cut short at the base evaluation (a monkeypatched stage; the folder clean-up is switched off
to stand for ``kill -9``) so no test trains; evaluations use a scripted model over two real VQA-RAD items.
"""

from __future__ import annotations

import json
import shutil

import pytest

import harness.experiments.pipeline as pipeline
from harness.cli import main
from harness.core.errors import HarnessError
from harness.core.paths import check_run_id
from harness.evaluation import evaluate
from harness.models.base import VisionLanguageModel

REAL_JPG = "synpic42202.jpg"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HARNESS_STORE", raising=False)
    return tmp_path / "home"


@pytest.fixture
def vqa_rad_mini(tmp_path, monkeypatch, shared_data):
    data = tmp_path / "vqa_rad"
    (data / "images").mkdir(parents=True)
    shutil.copy(shared_data / "vqa_rad" / "images" / REAL_JPG, data / "images" / REAL_JPG)
    records = [{"qid": i, "image_name": REAL_JPG, "image_organ": "CHEST", "answer": "no", "answer_type": "CLOSED",
                "question_type": "PRES", "question": f"Is there finding {i}?", "phrase_type": "freeform"}
               for i in range(1, 5)]
    (data / "testset.json").write_text(json.dumps(records), encoding="utf-8")
    monkeypatch.setenv("HARNESS_DATA_VQA_RAD", str(data))
    return data


@pytest.fixture
def killed_run(home, tmp_path, monkeypatch):
    """A ``harness run`` that wrote pipeline.json and was killed at its base evaluation; returns its argv."""
    folder = tmp_path / "model"
    (folder).mkdir()
    (folder / "config.json").write_text("{}")  # resolve_base_model needs a folder; nothing loads it here
    reached = []

    def killed(*args, **kwargs):
        reached.append(args)
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "evaluate_base", killed)
    monkeypatch.setattr(pipeline, "_remove_if_only_manifest", lambda run_dir: None)  # kill -9: no clean-up
    argv = ["run", "--method", "dpo", "--model", str(folder), "--tasks", "synth_vqa", "--run-id", "r1"]
    assert main(argv) == 2
    return argv, reached


def test_resume_with_changed_settings_is_refused_naming_the_keys(killed_run, home, capsys):
    argv, reached = killed_run
    saved = json.loads((home / "runs" / "r1" / "pipeline.json").read_text())
    capsys.readouterr()
    assert main([*argv, "--lr", "0.5", "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    line = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(line) == 1 and "Traceback" not in err
    assert "train.epochs 1.0 -> 3.0" in line[0] and "train.lr 5e-06 -> 0.5" in line[0] and "--allow-changed" in line[0]
    assert json.loads((home / "runs" / "r1" / "pipeline.json").read_text()) == saved  # not overwritten
    assert len(reached) == 1

    # settings that do not shape results may change; --allow-changed overrides the rest and says so
    assert main([*argv, "--save-every", "5"]) == 2 and len(reached) == 2
    assert main([*argv, "--lr", "0.5", "--allow-changed"]) == 2 and len(reached) == 3
    resumed = json.loads((home / "runs" / "r1" / "pipeline.json").read_text())
    assert resumed["fingerprint"]["train.lr"] == 0.5 and resumed["started_with"]["train.lr"] == 5e-06


def test_the_run_id_is_printed_before_any_work(killed_run, capsys):
    argv, _ = killed_run
    capsys.readouterr()
    main(argv)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("run r1: resuming dpo") and "--run-id r1" in err[0]
    assert err[-1] == "error: interrupted: rerun with --run-id r1 to resume"


def test_a_run_id_of_another_kind_is_refused(killed_run, home, capsys, tmp_path):
    argv, reached = killed_run
    evaluation = home / "runs" / "e1"
    evaluation.mkdir(parents=True)
    (evaluation / "run.json").write_text("{}")
    capsys.readouterr()
    assert main([*argv[:-1], "e1"]) == 2
    assert "e1: that run is an evaluation" in capsys.readouterr().err
    assert main(["run", "--method", "ipo", *argv[3:]]) == 2  # same id, other method
    assert "is a 'dpo' run, not 'ipo'" in capsys.readouterr().err
    with pytest.raises(HarnessError, match="is a harness run, not an evaluation"):
        evaluate(Scripted(), ["synth_vqa"], run_id="r1", store=False)
    assert len(reached) == 1


@pytest.mark.parametrize("run_id,ok", [("a" * 64, True), ("a" * 65, False), ("20261201-120000-abc123", True),
                                       ("base-0123abcd", True), ("../x", False), ("a..b", False), ("-x", False),
                                       ("a b", False), ("", False)])
def test_run_id_pattern(run_id, ok):
    if ok:
        assert check_run_id(run_id) == run_id
    else:
        with pytest.raises(HarnessError, match="run id"):
            check_run_id(run_id)


def test_the_base_evaluation_id_is_stable_per_signature():
    config = pipeline.RunConfig(method="dpo", model="tiny", eval_limit=5)
    first = pipeline.base_run_id_for(config, "tiny@abc")
    assert first == pipeline.base_run_id_for(pipeline.RunConfig(method="ipo", model="tiny", eval_limit=5), "tiny@abc")
    assert first != pipeline.base_run_id_for(config, "tiny@def")
    assert first != pipeline.base_run_id_for(pipeline.RunConfig(method="dpo", model="tiny", eval_limit=6), "tiny@abc")
    assert check_run_id(first) == first


class Scripted(VisionLanguageModel):
    """Answers "no"; raises ``fail`` once it has answered ``stop_after`` prompts."""

    name = "scripted"

    def __init__(self, stop_after: int | None = None, fail: BaseException | None = None):
        self.stop_after, self.fail, self.prompts = stop_after, fail, []

    def generate(self, images, prompts, config=None):
        if self.stop_after is not None and len(self.prompts) >= self.stop_after:
            raise self.fail
        self.prompts += list(prompts)
        return ["no"] * len(prompts)


def test_a_killed_evaluation_resumes_under_its_id(home, vqa_rad_mini, tmp_path):
    store = tmp_path / "store.sqlite"
    with pytest.raises(KeyboardInterrupt):
        evaluate(Scripted(2, KeyboardInterrupt()), ["vqa_rad"], batch_size=1, run_id="e1", store=store)
    assert (home / "runs" / "e1" / "run.json").exists()  # two answers saved: kept for the resume
    again = Scripted()
    result = evaluate(again, ["vqa_rad"], batch_size=1, run_id="e1", store=store)
    assert len(again.prompts) == 2  # only the two unanswered items
    assert result.run_id == "e1" and len(result.tasks["vqa_rad"].predictions) == 4


def test_a_failed_evaluation_leaves_no_folder_and_no_stored_run(home, vqa_rad_mini, tmp_path):
    from harness.results.store import ResultsStore

    store = tmp_path / "store.sqlite"
    with pytest.raises(HarnessError):
        evaluate(Scripted(0, HarnessError("endpoint down")), ["vqa_rad"], batch_size=1, run_id="e2", store=store)
    assert not (home / "runs" / "e2").exists()
    assert not store.exists() or ResultsStore(store).runs() == []
