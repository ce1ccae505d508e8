"""Every evaluation records what data it read, by content, and a run on part of an official split is marked
partial wherever partial runs are marked: the run folder, ``harness results``, the leaderboard, the gate."""

from __future__ import annotations

import json
import os

import pytest

from harness.cli import main
from harness.core.errors import HarnessError
from harness.evaluation import evaluate
from harness.models.base import VisionLanguageModel
from harness.results.store import ResultsStore


class SaysYes(VisionLanguageModel):
    name = "says-yes"

    def generate(self, images, prompts, config=None):
        return ["yes" for _ in prompts]


def _vqa_rad_folder(shared_data, tmp_path, keep: int | None):
    """A data root holding VQA-RAD's layout: the real test file (or its first ``keep`` items), the real images."""
    root = tmp_path / (f"cut_{keep}" if keep else "full")
    folder = root / "vqa_rad"
    folder.mkdir(parents=True)
    records = json.loads((shared_data / "vqa_rad" / "testset.json").read_text(encoding="utf-8"))
    (folder / "testset.json").write_text(json.dumps(records[:keep] if keep else records), encoding="utf-8")
    os.symlink(shared_data / "vqa_rad" / "images", folder / "images")
    return root


@pytest.fixture(scope="module")
def full_and_cut(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("provenance")
    store = ResultsStore(tmp / "store.sqlite")
    full = evaluate(SaysYes(), ["vqa_rad"], data_dir=_vqa_rad_folder(shared_data, tmp, None), store=store,
                    run_id="full", progress=False)
    cut = evaluate(SaysYes(), ["vqa_rad"], data_dir=_vqa_rad_folder(shared_data, tmp, 60), store=store,
                   run_id="cut", progress=False)
    return tmp, store, full, cut


def test_the_run_folder_records_the_data_versions_commit_and_seeds(full_and_cut):
    _, _, full, cut = full_and_cut
    saved = json.loads((cut.run_dir / "run.json").read_text())
    record = saved["data"]["vqa_rad"]
    assert (record["n"], record["expected_n"], record["split"], record["version"]) == (60, 451, "test", "1.2")
    assert "60 of the official 451" in record["partial"]
    assert len(record["content_sha256"]) == 64 and len(record["items_sha256"]) == 64
    env = saved["environment"]
    assert env["versions"]["torch"] and "harness_version" in env and "git_commit" in env
    assert env["seeds"]["eval"] == 0
    whole = json.loads((full.run_dir / "run.json").read_text())["data"]["vqa_rad"]
    assert (whole["n"], whole["partial"]) == (451, "")
    assert whole["content_sha256"] != record["content_sha256"]
    assert str(full.run_dir.parent.parent) not in json.dumps(whole)  # no machine path in the record


def test_the_store_and_harness_results_show_the_cut_run_as_partial(full_and_cut, capsys):
    tmp, store, _, _ = full_and_cut
    assert store.get_run("cut")["config"]["data"]["vqa_rad"]["n"] == 60
    assert main(["results", "--store", str(tmp / "store.sqlite"), "--format", "json"]) == 0
    rows = {row["run_id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["full"]["test set"] == "full"
    assert rows["cut"]["test set"].startswith("partial (vqa_rad: 60 of the official 451 items")


def test_the_leaderboard_shows_the_cut_run_as_partial_and_ranks_it_after_the_full_one(full_and_cut):
    pytest.importorskip("pandas")
    from leaderboard.data import RANK, RUN_ID, TAB_BY_KEY, TEST_SET, Board, wide_table

    _, store, _, _ = full_and_cut
    for run_id in ("full", "cut"):
        store.approve(run_id)
    frame = wide_table(Board.from_store(store), TAB_BY_KEY["vqa"])
    rows = {row[RUN_ID]: row for row in frame.to_dict("records")}
    assert rows["full"][TEST_SET] == "full" and rows["full"][RANK] == 1
    assert rows["cut"][TEST_SET].startswith("partial (vqa_rad: 60 of the official 451 items")
    assert rows["cut"][RANK] == 2  # a partial run ranks after every full one, whatever its score


def test_the_gate_refuses_a_partial_candidate_against_a_full_baseline(full_and_cut, capsys):
    tmp, _, full, cut = full_and_cut
    from harness.regress.compare import RegressConfig, compare_sources

    with pytest.raises(HarnessError, match="not comparable: the candidate evaluated part of vqa_rad"):
        compare_sources(str(full.run_dir), str(cut.run_dir), RegressConfig())
    code = main(["regress", "--baseline", "full", "--candidate", "cut", "--store", str(tmp / "store.sqlite")])
    assert code == 2
    assert "part of vqa_rad" in capsys.readouterr().err


def test_a_resumed_evaluation_refuses_other_data(full_and_cut, shared_data, tmp_path):
    tmp, store, _, cut = full_and_cut
    other = _vqa_rad_folder(shared_data, tmp_path, 59)
    with pytest.raises(HarnessError, match="evaluated other 'vqa_rad' data"):
        evaluate(SaysYes(), ["vqa_rad"], data_dir=other, store=store, run_id="cut", progress=False)
