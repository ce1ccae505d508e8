"""The Run page's data: the preselected run renders, reports can be right or wrong, images are found."""

from __future__ import annotations

from lb_fakes import seed_store

from leaderboard import predictions as preds
from leaderboard.data import Board


def test_the_preselected_run_renders_its_results_and_predictions(tmp_path):
    from leaderboard.app import _run_choices, _run_view

    store = seed_store(tmp_path / "r.sqlite", tmp_path / "runs")
    board = Board.from_store(store)
    first = _run_choices(board)[0][1]  # the dropdown starts on the newest run
    results, info, passes = _run_view(board, first)
    assert first == "fake-run-4" and len(results) == len(store.results(run_ids=[first])) == 9
    assert list(results.columns)[0] == "Task" and results["Value"].notna().all()
    assert info["run_id"] == first and "predictions_dir" not in info
    _, _, passes = _run_view(board, "fake-run-2")
    assert passes == ["vqa_rad"]


def test_synthetic_reports_are_right_only_when_they_state_exactly_the_true_findings():
    from harness.tasks.synth import generate_case

    lesion = generate_case("test", 0)[2]  # a medium mass in the right upper lung
    normal = generate_case("test", 1)[2]
    assert lesion.lesions and not normal.lesions
    records = [
        {"id": "a", "answer_type": "report", "prediction": lesion.report, "reference": lesion.report},
        {"id": "b", "answer_type": "report", "prediction": normal.report, "reference": lesion.report},  # missed it
        {"id": "c", "answer_type": "report", "prediction": lesion.report, "reference": normal.report},  # invented
    ]
    assert preds.mark_correct(records, "synth_report") == [True, False, False]
    wrong = preds.table(records, wrong_only=True, marks=preds.mark_correct(records, "synth_report"))
    assert list(wrong["ID"]) == ["b", "c"]
    # a real report task has no right or wrong: no marks rather than everything 'wrong'
    assert preds.mark_correct(records[:1], "iu_xray") == [None]


def test_an_image_is_found_through_the_tasks_dataset_when_the_record_names_no_file(shared_data):
    from harness.tasks import get_task

    item = get_task("vqa_rad").load("test", data_dir=shared_data)[0]
    run = {"run_id": "r", "config": {"pipeline": {"data_dir": str(shared_data), "eval_split": "test"}}}
    record = {"id": item["id"], "question": item["question"], "metadata": {}}
    image, where = preds.load_image(record, run, "vqa_rad")
    assert image is not None and image.size == item["image"].size and "vqa_rad test item" in where
    missing, where = preds.load_image({"id": "no-such-item"}, run, "vqa_rad")
    assert missing is None and where == "not found"


def test_the_run_page_shows_no_local_path_from_a_runs_config(tmp_path):
    import json

    from harness.results.store import ResultRow, RunRecord
    from leaderboard.app import _run_view

    store = seed_store(tmp_path / "r.sqlite")
    store.add_run(RunRecord(model="fake-local", run_id="fake-local", config={
        "model": {"name": "fake-local", "path": "/home/someone/runs/x/train/model"}}),
        [ResultRow("vqa_rad", "closed_accuracy", 0.5)])
    _, info, _ = _run_view(Board.from_store(store), "fake-local")
    assert info["config"]["model"]["path"] == "model" and "/home/" not in json.dumps(info)
