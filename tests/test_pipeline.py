"""``harness run``: the whole pipeline on the tiny model, its reuse of the base evaluation, and resume."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.pipeline import RunConfig, model_fingerprint, run
from harness.results.store import ResultsStore

pytestmark = pytest.mark.slow


def _config(tmp_path, method: str, **kw) -> RunConfig:
    return RunConfig(method=method, train_limit=12, eval_limit=6, store=str(tmp_path / "store.sqlite"),
                     train_batch_size=4, **kw)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("pipeline")
    first = run(_config(tmp, "dpo"))
    second = run(_config(tmp, "mmedpo"))
    return tmp, first, second


def test_run_stores_base_and_method_and_prints_both(two_runs):
    tmp, first, _ = two_runs
    store = ResultsStore(tmp / "store.sqlite")
    stored = {r["run_id"]: r for r in store.runs()}
    assert set(stored) >= {first.run_id, first.base_run_id}
    assert stored[first.run_id]["method"] == "dpo"
    assert stored[first.run_id]["base_model"] == stored[first.base_run_id]["model"]
    assert [row["run"] for row in first.table] == ["base", "dpo (this run)"]
    assert all(row["synth_vqa/closed_accuracy"] for row in first.table)
    assert (first.trained_model / "config.json").exists()


def test_second_method_reuses_the_base_evaluation_and_lists_earlier_runs(two_runs):
    tmp, first, second = two_runs
    assert second.base_run_id == first.base_run_id
    assert [row["run"] for row in second.table] == ["base", "dpo", "mmedpo (this run)"]
    store = ResultsStore(tmp / "store.sqlite")
    assert len(store.runs()) == 3  # one base evaluation, two method runs
    pairs = (second.run_dir / "pairs.jsonl").read_text().splitlines()
    assert any('"kind": "visual"' in line for line in pairs)  # mmedpo's own builder, not the default


def test_rerun_with_the_same_id_resumes_without_redoing_stages(two_runs, monkeypatch):
    tmp, first, _ = two_runs
    import harness.pipeline as pipeline

    def fail(*args, **kwargs):
        raise AssertionError("a finished stage ran again")

    monkeypatch.setattr("harness.training.train_preference", fail)
    monkeypatch.setattr(pipeline, "default_text_pairs", fail)
    again = run(_config(tmp, "dpo"), run_id=first.run_id)
    mine = [row for row in again.table if row["run_id"] in (first.run_id, first.base_run_id)]
    assert mine == first.table  # the same stored numbers; the table now also lists the later mmedpo run


def test_a_run_id_of_another_method_is_refused(two_runs):
    tmp, first, _ = two_runs
    with pytest.raises(HarnessError, match="is a 'dpo' run"):
        run(_config(tmp, "ipo"), run_id=first.run_id)


def test_bad_settings_are_one_line_errors(tmp_path):
    with pytest.raises(HarnessError, match="eval-limit"):
        RunConfig(eval_limit=0)
    with pytest.raises(HarnessError, match="local model folder"):
        pipeline_base = __import__("harness.pipeline", fromlist=["resolve_base_model"])
        pipeline_base.resolve_base_model(str(tmp_path / "missing"))


def test_model_fingerprint_changes_with_the_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"x" * 10)
    before = model_fingerprint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"x" * 11)
    assert model_fingerprint(tmp_path) != before
