"""lm-eval imports on the leaderboard: pending until approved, intervals from samples, --limit marked, no twins."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.core.errors import DataError
from harness.results.store import ResultsStore


def _lm_eval_output(folder, limit=10):
    folder.mkdir()
    hits = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1]
    payload = {"results": {"vqa_rad_closed": {"alias": "vqa_rad_closed", "closed_accuracy,none": sum(hits) / 10,
                                              "closed_accuracy_stderr,none": "N/A"}},
               "configs": {"vqa_rad_closed": {"metadata": {"harness_task": "vqa_rad"}}},
               "higher_is_better": {"vqa_rad_closed": {"closed_accuracy": True}},
               "n-samples": {"vqa_rad_closed": {"original": 272, "effective": 10}},
               "config": {"model": "hf-multimodal", "model_args": {"pretrained": "org/fake-model"}, "limit": limit}}
    path = folder / "results_2025-01-01T00-00-00.json"
    path.write_text(json.dumps(payload), "utf-8")
    samples = [{"doc_id": i, "doc": {"id": f"q{i}", "question": "q?", "answer": "yes", "answer_type": "closed"},
                "filtered_resps": ["yes" if h else "no"], "closed_accuracy": h} for i, h in enumerate(hits)]
    (folder / "samples_vqa_rad_closed_2025-01-01T00-00-00.jsonl").write_text(
        "".join(json.dumps(s) + "\n" for s in samples), "utf-8")
    return path


def test_lm_eval_import_is_pending_has_an_interval_refuses_twins_and_is_marked_partial(tmp_path, capsys):
    from harness.lmeval.importer import import_lm_eval
    from leaderboard.data import TAB_BY_KEY, TEST_SET, Board, wide_table

    store = ResultsStore(tmp_path / "s.sqlite")
    path = _lm_eval_output(tmp_path / "out")
    run_id = import_lm_eval(path, store=store)
    run = store.get_run(run_id)
    assert run["status"] == "pending"  # a maintainer reviews it like any submission
    (row,) = store.results(run_ids=[run_id])
    assert row["value"] == 0.7 and row["ci_low"] is not None and row["ci_low"] < 0.7 < row["ci_high"]
    assert row["n"] == 10
    with pytest.raises(DataError, match=f"already imported as run {run_id}"):
        import_lm_eval(path, store=store)
    assert main(["import", "lm-eval", str(path), "--store", str(store.path)]) == 2
    assert "already imported" in capsys.readouterr().err and len(store.runs()) == 1

    board = Board.from_store(store)
    assert wide_table(board, TAB_BY_KEY["vqa"]).empty  # not on the board before approval
    store.set_status(run_id, "approved")
    frame = wide_table(Board.from_store(store), TAB_BY_KEY["vqa"])
    assert frame.loc[0, TEST_SET] == "partial (limit 10)" and frame.loc[0, "Rank"] == 1  # marked; alone, it ranks


STAMP = "2026-12-07T19-05-09.008797"


def _group_run(folder):
    """What ``lm_eval --tasks vqa_rad --limit 10 --log_samples`` writes for the exported tasks (the shape of a
    real run's files): the group beside its two subtasks in ``results``, one samples file per subtask whose
    per-metric values are the (id, prediction, reference) triples the exported hooks log. Synthetic answers."""
    from harness.metrics import get_metric

    folder.mkdir()
    answers = {"closed": [(f"c{i}", "yes" if i % 3 else "no", "yes") for i in range(10)],
               "open": [(f"o{i}", "left lung" if i % 2 else "heart", "left lung") for i in range(10)]}
    metrics = {"closed": "closed_accuracy", "open": "open_recall"}
    results, configs = {}, {}
    for kind, metric in metrics.items():
        triples = answers[kind]
        value = get_metric(metric)([p for _, p, _ in triples], [r for *_, r in triples], n_boot=0).value
        results[f"vqa_rad_{kind}"] = {"alias": f" - vqa_rad_{kind}", f"{metric},none": value,
                                      f"{metric}_stderr,none": "N/A"}
        configs[f"vqa_rad_{kind}"] = {"metadata": {"harness_task": "vqa_rad"}}
        samples = [{"doc_id": i, "doc": {"id": doc_id, "question": "q?", "answer": ref, "answer_type": kind},
                    "filtered_resps": [pred], "filter": "none", "metrics": [metric], metric: [doc_id, pred, ref]}
                   for i, (doc_id, pred, ref) in enumerate(triples)]
        if kind == "closed":  # lm-eval logs a document once per filter: the unfiltered one is the answer
            samples.insert(0, {**samples[0], "filter": "strict-match", "filtered_resps": ["maybe"]})
        (folder / f"samples_vqa_rad_{kind}_{STAMP}.jsonl").write_text(
            "".join(json.dumps(s) + "\n" for s in samples), "utf-8")
    results["vqa_rad"] = {"alias": "vqa_rad", "name": "vqa_rad"}  # the group: no numbers, no samples file
    (folder / "samples_vqa_rad_closed_2026-01-01T00-00-00.jsonl").write_text(  # an older run in the same folder
        json.dumps({"doc_id": 0, "doc": {"id": "old"}, "filtered_resps": ["no"], "closed_accuracy": 1}) + "\n")
    payload = {"results": results, "group_subtasks": {"vqa_rad": ["vqa_rad_closed", "vqa_rad_open"]},
               "configs": configs, "higher_is_better": {k: {m: True} for k, m in
                                                         (("vqa_rad_closed", "closed_accuracy"),
                                                          ("vqa_rad_open", "open_recall"))},
               "n-samples": {"vqa_rad_closed": {"original": 272, "effective": 10},
                             "vqa_rad_open": {"original": 179, "effective": 10}},
               "config": {"model": "hf-multimodal", "model_args": {"pretrained": "org/fake-model"}, "limit": 10}}
    path = folder / f"results_{STAMP}.json"
    path.write_text(json.dumps(payload), "utf-8")
    return path, answers, metrics


def test_a_group_run_imports_one_prediction_per_sample_with_the_harness_metrics_intervals(tmp_path, capsys):
    from pathlib import Path

    from harness.core.io import read_jsonl
    from harness.metrics import get_metric

    path, answers, metrics = _group_run(tmp_path / "out")
    store = ResultsStore(tmp_path / "s.sqlite")
    assert main(["import", "lm-eval", str(path), "--store", str(store.path)]) == 0
    run_id = capsys.readouterr().out.split()[-1]
    records = list(read_jsonl(Path(store.get_run(run_id)["predictions_dir"]) / "predictions" / "vqa_rad.jsonl"))
    assert sorted(r["id"] for r in records) == sorted(i for triples in answers.values() for i, _, _ in triples)
    assert next(r for r in records if r["id"] == "c0")["prediction"] == "no"  # the unfiltered answer, once
    rows = {r["metric"]: r for r in store.results(run_ids=[run_id])}
    assert set(rows) == {"closed_accuracy", "open_recall"}  # the group adds no row of its own
    for kind, metric in metrics.items():
        triples = answers[kind]
        expected = get_metric(metric)([p for _, p, _ in triples], [r for *_, r in triples])
        row = rows[metric]
        assert (row["ci_low"], row["ci_high"], row["n"]) == (expected.ci_low, expected.ci_high, 10)
        assert row["ci_low"] < row["value"] < row["ci_high"]
