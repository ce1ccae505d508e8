from __future__ import annotations

import pytest

from harness.core.errors import HarnessError
from harness.results import ResultRow, ResultsStore, RunRecord, new_run_id


def _run(run_id="r1", **kw):
    return RunRecord(model="m", run_id=run_id, config={"a": 1}, versions={"torch": "x"}, seed=3, **kw)


def test_replace_swaps_a_run_in_one_step(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    store.add_run(_run(), [ResultRow("t", "acc", 0.5), ResultRow("t", "f1", 0.4)])
    with pytest.raises(HarnessError, match="could not store run r1"):
        store.add_run(_run(), [ResultRow("t", "acc", 0.6)])
    store.add_run(_run(), [ResultRow("t", "acc", 0.6)], replace=True)
    rows = store.results()
    assert [(r["metric"], r["value"]) for r in rows] == [("acc", 0.6)]
    assert store.get_run("r1")["seed"] == 3 and store.integrity_check() == []


def test_run_ids_sort_by_time_and_are_unique():
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50 and all(len(i.split("-")) == 3 for i in ids)
