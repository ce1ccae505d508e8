from __future__ import annotations

import csv
import json

import pytest

from harness.core.errors import HarnessError
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


PAYLOADS = ("=HYPERLINK(\"http://x\",\"click\")", "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1)")


@pytest.fixture
def hostile(tmp_path):
    store = ResultsStore(tmp_path / "h.sqlite")
    for i, name in enumerate(PAYLOADS):
        store.add_run(RunRecord(model=name, run_id=f"h{i}", created_at=f"2025-01-0{i + 1}T00:00:00"),
                      [ResultRow("vqa", "cmp_acc", 0.5 + i / 10)])
    store.add_run(RunRecord(model="<script>alert(1)</script>", method="[x](javascript:alert(1))", run_id="h8",
                            created_at="2025-01-08T00:00:00"), [ResultRow("vqa", "cmp_acc", 0.2)])
    store.add_run(RunRecord(model="waiting", status="pending", run_id="p1", created_at="2025-01-09T00:00:00"),
                  [ResultRow("vqa", "cmp_acc", 0.9)])
    store.add_run(RunRecord(model="refused", status="rejected", run_id="p2", created_at="2025-01-09T00:00:01"),
                  [ResultRow("vqa", "cmp_acc", 0.1)])
    return store


def test_csv_export_neutralizes_formulas_and_keeps_only_approved_runs_with_a_status_column(hostile, tmp_path):
    export(tmp_path / "h.csv", hostile.runs(), hostile.results())
    table = list(csv.DictReader((tmp_path / "h.csv").open()))
    assert {row["status"] for row in table} == {"approved"}
    assert {row["model"] for row in table} >= {"'" + p for p in PAYLOADS}  # shown as text, never evaluated
    assert not any(row["model"].startswith(("=", "+", "-", "@")) for row in table)
    assert "waiting" not in {row["model"] for row in table} and "refused" not in {row["model"] for row in table}
    assert float(next(r for r in table if r["run_id"] == "h1")["vqa/cmp_acc"]) == 0.6  # numbers stay numbers

    export(tmp_path / "all.csv", hostile.runs(), hostile.results(), statuses=None)
    every = {row["model"]: row["status"] for row in csv.DictReader((tmp_path / "all.csv").open())}
    assert every["waiting"] == "pending" and every["refused"] == "rejected"


def test_markdown_export_escapes_html_and_link_syntax(hostile, tmp_path):
    export(tmp_path / "h.md", hostile.runs(), hostile.results())
    text = (tmp_path / "h.md").read_text()
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "[x](javascript" not in text and "\\[x\\](javascript:alert(1))" in text
    assert "\\|' /C calc'" in text  # a pipe in a name cannot split the row
    assert all(line.count(" | ") == text.splitlines()[0].count(" | ") for line in text.splitlines() if line)
    assert "waiting" not in text
