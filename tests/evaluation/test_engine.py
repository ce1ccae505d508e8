"""The evaluation engine's logic, on the toy task with a model that reads the pixels."""

from __future__ import annotations

import json

import pytest

from harness.core.errors import HarnessError, UnknownNameError
from harness.core.io import read_jsonl
from harness.evaluation import EvalConfig, evaluate
from harness.results import ResultsStore


def test_predictions_metrics_and_store(oracle, tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    result = evaluate(oracle, ["toy_eval"], batch_size=4, output_dir=tmp_path / "run", store=store, progress=False)

    records = list(read_jsonl(tmp_path / "run" / "predictions" / "toy_eval.jsonl"))
    assert [r["id"] for r in records] == [f"toy-{i:03d}" for i in range(14)]  # dataset order, not batch order
    assert set(records[0]) == {"id", "question", "answer_type", "prediction", "reference", "metadata"}
    assert records[0]["metadata"] == {"side": "right"}
    metrics = result.tasks["toy_eval"].metrics
    assert metrics["toy_exact"].n == 14
    assert metrics["toy_closed"].n == sum(r["answer_type"] == "closed" for r in records)
    assert metrics["toy_open"].n == sum(r["answer_type"] == "open" for r in records)
    assert metrics["toy_closed"].value == 1.0  # the oracle reads the square correctly
    assert all(len(call) <= 4 for call in oracle.calls)
    # one generate call never mixes answer types: each type has its own token budget
    assert all(len({("yes or no" in p, "short phrase" in p) for p in call}) == 1 for call in oracle.calls)

    stored = store.results(run_ids=[result.run_id])
    assert {(r["task"], r["metric"]) for r in stored} == {("toy_eval", m) for m in metrics}
    run = store.get_run(result.run_id)
    assert run["seed"] == 0 and run["versions"]["torch"] and run["predictions_dir"] == str(tmp_path / "run")
    assert run["config"]["batch_size"] == 4 and run["config"]["tasks"] == ["toy_eval"]


def test_interrupted_run_resumes_without_regenerating(tmp_path, oracle_cls, failing_cls):
    OracleModel, FailingModel = oracle_cls, failing_cls
    reference = evaluate(OracleModel(), ["toy_eval"], batch_size=3, output_dir=tmp_path / "full",
                         store=False, progress=False)

    crashing = FailingModel(OracleModel(), fail_after=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        evaluate(crashing, ["toy_eval"], batch_size=3, output_dir=tmp_path / "run", run_id="r1",
                 store=False, progress=False)
    part = tmp_path / "run" / "predictions" / "toy_eval.part-0.jsonl"
    saved = [r["id"] for r in read_jsonl(part)]
    assert len(saved) == 6  # two batches of three, fsynced before the crash

    resumed_model = OracleModel()
    resumed = evaluate(resumed_model, ["toy_eval"], batch_size=3, output_dir=tmp_path / "run", run_id="r1",
                       store=False, progress=False)
    regenerated = [p for call in resumed_model.calls for p in call]
    assert len(regenerated) == 14 - 6
    final = list(read_jsonl(tmp_path / "run" / "predictions" / "toy_eval.jsonl"))
    assert len({r["id"] for r in final}) == len(final) == 14
    assert final == reference.tasks["toy_eval"].predictions
    assert resumed.tasks["toy_eval"].metrics == reference.tasks["toy_eval"].metrics


def test_finished_run_rescored_without_generation(oracle, tmp_path, oracle_cls):
    store = ResultsStore(tmp_path / "r.sqlite")
    first = evaluate(oracle, ["toy_eval"], output_dir=tmp_path / "run", run_id="r1", store=store, progress=False)
    again = oracle_cls()
    second = evaluate(again, ["toy_eval"], output_dir=tmp_path / "run", run_id="r1", store=store, progress=False)
    assert again.calls == []
    assert second.tasks["toy_eval"].metrics == first.tasks["toy_eval"].metrics
    assert len(store.runs()) == 1 and len(store.results()) == 3  # replaced, not duplicated


def test_resume_refuses_a_different_model(oracle, tmp_path, oracle_cls):
    evaluate(oracle, ["toy_eval"], output_dir=tmp_path / "run", store=False, progress=False)
    other = oracle_cls()
    other.name = "another"
    with pytest.raises(HarnessError, match="holds predictions of model 'oracle'"):
        evaluate(other, ["toy_eval"], output_dir=tmp_path / "run", store=False, progress=False)


def test_limit_takes_the_first_items(oracle, tmp_path):
    result = evaluate(oracle, ["toy_eval"], limit=5, output_dir=tmp_path / "run", store=False, progress=False)
    assert [r["id"] for r in result.tasks["toy_eval"].predictions] == [f"toy-{i:03d}" for i in range(5)]


@pytest.mark.parametrize("mode", ["blank", "noise"])
def test_image_ablation_reports_the_drop(oracle, tmp_path, mode):
    store = ResultsStore(tmp_path / "r.sqlite")
    result = evaluate(oracle, ["toy_eval"], image_ablation=mode, output_dir=tmp_path / "run", store=store,
                      progress=False)
    task = result.tasks["toy_eval"]
    assert (tmp_path / "run" / "predictions" / f"toy_eval@{mode}.jsonl").exists()
    assert task.metrics["toy_open"].value == 1.0
    if mode == "blank":  # no square left to find
        assert {r["prediction"] for r in task.ablated_predictions if r["answer_type"] == "open"} == {"unknown"}
        assert task.drop("toy_open") == 1.0
    assert task.drop("toy_exact") == pytest.approx(task.metrics["toy_exact"].value
                                                   - task.ablated_metrics["toy_exact"].value)
    metrics = {r["metric"] for r in store.results()}
    assert {f"toy_exact@{mode}", "toy_exact"} <= metrics
    row = next(r for r in result.summary() if r["metric"] == "toy_open")
    assert row["drop"] == pytest.approx(100 * task.drop("toy_open"))  # toy metrics keep display_scale 100
    assert row[mode] == pytest.approx(100 * task.ablated_metrics["toy_open"].value)


def test_unknown_task_is_reported_with_a_suggestion(oracle, tmp_path):
    with pytest.raises(UnknownNameError, match="did you mean 'toy_eval'"):
        evaluate(oracle, ["toy_evl"], output_dir=tmp_path / "run", store=False)


def test_bad_config_values_are_user_errors():
    with pytest.raises(HarnessError, match="batch size"):
        EvalConfig(batch_size=0)
    with pytest.raises(HarnessError, match="image ablation"):
        EvalConfig(image_ablation="erase")


def test_results_json_written_beside_predictions(oracle, tmp_path):
    evaluate(oracle, ["toy_eval"], output_dir=tmp_path / "run", store=False, progress=False)
    payload = json.loads((tmp_path / "run" / "results.json").read_text())
    assert {r["metric"] for r in payload["results"]} == {"toy_exact", "toy_closed", "toy_open"}
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert manifest["model"]["name"] == "oracle" and manifest["config"]["split"] == "test"
