from __future__ import annotations

import csv
import json

import pytest

from harness.errors import HarnessError
from harness.metrics import METRICS, Metric
from harness.results import ResultRow, ResultsStore, RunRecord
from harness.results.compare import export, wide_rows

METRICS.register("cmp_acc", Metric(name="cmp_acc", higher_is_better=True, compute=lambda p, r, **k: None))


@pytest.fixture
def store(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    store.add_run(RunRecord(model="base", run_id="r1", created_at="2025-01-01T00:00:00"),
                  [ResultRow("vqa", "cmp_acc", 0.5, 0.4, 0.6, 10), ResultRow("vqa", "cmp_acc@blank", 0.45, 0.3, 0.5, 10)])
    store.add_run(RunRecord(model="tuned", method="dpo", run_id="r2", created_at="2025-01-02T00:00:00"),
                  [ResultRow("vqa", "cmp_acc", 0.7, 0.6, 0.8, 10), ResultRow("rep", "bleu_x", 0.25, None, None, 5)])
    return store


def test_wide_rows_one_per_run(store):
    rows = wide_rows(store.results())
    assert [r["run_id"] for r in rows] == ["r1", "r2"]
    assert rows[0]["vqa/cmp_acc"] == 0.5 and rows[0]["rep/bleu_x"] is None and rows[1]["rep/bleu_x"] == 0.25
    shown = wide_rows(store.results(), display=True)
    assert shown[1]["vqa/cmp_acc"] == "70.00 [60.00, 80.00]"  # scaled by the metric's display_scale
    assert shown[0]["vqa/cmp_acc@blank"] == "45.00 [30.00, 50.00]"  # ablations use their base metric's scale
    assert shown[1]["rep/bleu_x"] == "0.25"  # unregistered metric: shown as stored, no interval


def test_exports(store, tmp_path):
    runs, results = store.runs(), store.results()
    assert export(tmp_path / "c.csv", runs, results) == "csv"
    table = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert table[1]["model"] == "tuned" and float(table[1]["vqa/cmp_acc"]) == 0.7 and table[0]["rep/bleu_x"] == ""

    export(tmp_path / "c.json", runs, results)
    payload = json.loads((tmp_path / "c.json").read_text())
    assert [p["run_id"] for p in payload] == ["r1", "r2"]
    assert {r["metric"] for r in payload[0]["results"]} == {"cmp_acc", "cmp_acc@blank"}
    assert payload[0]["results"][0]["ci_low"] == 0.4

    export(tmp_path / "c.md", runs, results)
    lines = (tmp_path / "c.md").read_text().splitlines()
    assert lines[0].startswith("| run_id | model |") and len(lines) == 4
    assert "| 70.00 [60.00, 80.00] |" in lines[3]


def test_unknown_export_format(store, tmp_path):
    with pytest.raises(HarnessError, match="cannot tell the export format"):
        export(tmp_path / "c.xlsx", store.runs(), store.results())
