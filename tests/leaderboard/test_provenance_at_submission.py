"""Provenance computed at submission: full/partial and n from the submitted predictions against the official
split, and how far each field could be verified; what the config declares counts for nothing."""

from __future__ import annotations

import json

import pytest
from lb_fakes import submission

from harness.cli import main
from harness.results.compare import partial_reason
from harness.results.store import ResultRow, RunRecord
from leaderboard.provenance import NO_PREDICTIONS
from leaderboard.submit import submit_bytes


@pytest.fixture(autouse=True)
def no_data_here(monkeypatch):
    """The server holds no real data unless a test says so: only counts can be checked."""
    for name in ("HARNESS_DATA", "HARNESS_DATA_VQA_RAD"):
        monkeypatch.delenv(name, raising=False)


def _submit(store, model: str, *, predictions=None, config=None, base="fake-base-7b", value=0.6) -> dict:
    payload = submission(model, value=value, base=base)
    run = payload["runs"][0]
    if predictions is not None:
        run["predictions"] = predictions
    if config is not None:
        run["config"] = config
    (run_id,) = submit_bytes(json.dumps(payload).encode(), store).stored
    return store.get_run(run_id)


def test_ten_of_451_vqa_rad_items_is_partial_whatever_the_config_declares(store):
    declared_full = {"data": {"vqa_rad": {"task": "vqa_rad", "n": 451, "partial": ""}},
                     "verification": {"test_set": "verified"}}
    run = _submit(store, "fake-ten", predictions={"vqa_rad": [str(i) for i in range(10)]}, config=declared_full)
    record = run["config"]["data"]["vqa_rad"]
    assert (record["n"], record["expected_n"], record["checked"]) == (10, 451, "count")
    assert partial_reason(run) == "vqa_rad: 10 of the official 451 items"
    assert run["config"]["verification"]["test_set"] == "unverified"  # ids not checkable without the data


def test_the_board_shows_the_ten_item_submission_as_partial(store):
    from leaderboard.data import TAB_BY_KEY, TEST_SET, Board, wide_table
    from leaderboard.submit import approve

    run = _submit(store, "fake-ten-shown", predictions={"vqa_rad": [str(i) for i in range(10)]})
    approve(store, [run["run_id"]], force=True)
    board = Board([r for r in store.runs() if r["status"] != "rejected"], store.results())
    row = wide_table(board, TAB_BY_KEY["vqa"]).set_index("Run ID").loc[run["run_id"]]
    assert row[TEST_SET].startswith("partial") and "10 of the official 451" in row[TEST_SET]


def test_451_predictions_without_the_data_count_as_full_but_unverified(store):
    run = _submit(store, "fake-count", predictions={"vqa_rad": [{"id": str(i)} for i in range(451)]})
    assert partial_reason(run) == "" and run["config"]["verification"]["test_set"] == "unverified"


def test_no_predictions_means_self_declared_and_not_full(store):
    run = _submit(store, "fake-no-preds", config={"data": {"vqa_rad": {"partial": ""}}})
    assert run["config"]["data"]["vqa_rad"]["partial"] == NO_PREDICTIONS
    assert run["config"]["data"]["vqa_rad"]["declared_n"] == 272
    assert partial_reason(run) == f"vqa_rad: {NO_PREDICTIONS}"
    assert run["config"]["verification"]["test_set"] == "self-declared"


def test_ids_are_checked_against_the_official_split_when_the_data_is_here(store, shared_data, monkeypatch):
    from harness.tasks import get_task

    monkeypatch.setenv("HARNESS_DATA_VQA_RAD", str(shared_data / "vqa_rad"))
    ids = [str(i) for i in get_task("vqa_rad").load("test")["id"]]
    assert len(ids) == 451
    full = _submit(store, "fake-all-ids", predictions={"vqa_rad": ids})
    assert partial_reason(full) == "" and full["config"]["verification"]["test_set"] == "verified"
    assert full["config"]["data"]["vqa_rad"]["checked"] == "ids"
    # 451 items, but one of them is not in the split: the count alone would have passed it
    swapped = _submit(store, "fake-swapped", predictions={"vqa_rad": ids[:-1] + ["not-an-item"]}, value=0.61)
    assert partial_reason(swapped) == ("vqa_rad: 450 of the official 451 items; 1 ids not in the official test "
                                       "split")
    assert swapped["config"]["verification"]["test_set"] == "verified"


def test_a_generated_task_is_checked_by_ids(store):
    payload = submission("fake-synth", task="synth_vqa")
    payload["runs"][0]["predictions"] = {"synth_vqa": [f"synth-test-{i:06d}" for i in range(20)]}
    (run_id,) = submit_bytes(json.dumps(payload).encode(), store).stored
    run = store.get_run(run_id)
    assert run["config"]["data"]["synth_vqa"]["checked"] == "ids"
    assert partial_reason(run) == "synth_vqa: 20 of the official 3000 items"


def test_base_run_and_fingerprint_are_verified_only_against_an_approved_stored_base(store):
    base_model = "fake-tiny@0123456789abcdef"
    store.add_run(RunRecord(model=base_model, base_model=base_model, run_id="base-approved",
                            config={"role": "base"}), [ResultRow("vqa_rad", "closed_accuracy", 0.4)])
    store.add_run(RunRecord(model=base_model, base_model=base_model, run_id="base-pending", status="pending",
                            source="submission", config={}), [ResultRow("vqa_rad", "closed_accuracy", 0.05)])
    good = _submit(store, "fake-m1", base=base_model, config={"base_run_id": "base-approved"})
    assert good["config"]["verification"] == {"test_set": "self-declared", "base_run": "verified",
                                              "model_fingerprint": "verified"}
    pending = _submit(store, "fake-m2", base=base_model, config={"base_run_id": "base-pending"}, value=0.62)
    assert pending["config"]["verification"]["base_run"] == "unverified"
    other_weights = _submit(store, "fake-m3", base="fake-tiny@fedcba9876543210",
                            config={"base_run_id": "base-approved"}, value=0.63)
    assert other_weights["config"]["verification"]["base_run"] == "unverified"
    assert other_weights["config"]["verification"]["model_fingerprint"] == "self-declared"
    unnamed = _submit(store, "fake-m4", base="fake-tiny", value=0.64)
    assert "base_run" not in unnamed["config"]["verification"]
    assert unnamed["config"]["verification"]["model_fingerprint"] == "unverified"


def test_a_local_runs_json_export_carries_its_ids_and_submits_as_verified(tmp_path):
    from harness.evaluation import evaluate
    from harness.models.base import VisionLanguageModel
    from harness.results.store import ResultsStore
    from leaderboard.submit import submit_file

    class SaysYes(VisionLanguageModel):
        name = "says-yes"

        def generate(self, images, prompts, config=None):
            return ["yes" for _ in prompts]

    local = ResultsStore(tmp_path / "local.sqlite")
    evaluate(SaysYes(), ["synth_vqa"], limit=12, store=local, run_id="local-12", progress=False,
             output_dir=tmp_path / "run")
    export = tmp_path / "mine.json"
    assert main(["results", "--export", str(export), "--store", str(local.path)]) == 0
    exported = json.loads(export.read_text("utf-8"))[0]
    assert len(exported["predictions"]["synth_vqa"]) == 12
    board = ResultsStore(tmp_path / "board.sqlite")
    (run_id,) = submit_file(export, board).stored
    run = board.get_run(run_id)
    assert run["config"]["data"]["synth_vqa"]["checked"] == "ids"
    assert run["config"]["verification"]["test_set"] == "verified"
    assert partial_reason(run) == "limit 12; synth_vqa: 12 of the official 3000 items"
