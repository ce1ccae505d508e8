"""``harness eval`` end to end: the table, the store, one-line errors for bad names."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.results import ResultsStore

SHORT = ["--max-new-tokens-closed", "4", "--max-new-tokens-open", "6", "--max-new-tokens-report", "10"]


def test_eval_prints_metrics_and_stores_the_run(tiny_hf_dir, tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    rc = main(["eval", "--model", str(tiny_hf_dir), "--tasks", "toy_eval", "--limit", "6", "--batch-size", "3",
               "--store", str(db), "--no-progress", "--image-ablation", "blank", *SHORT])
    out = capsys.readouterr().out
    assert rc == 0
    assert "toy_exact" in out and "95% CI" in out and "drop" in out and "blank" in out
    runs = ResultsStore(db).runs()
    assert len(runs) == 1 and runs[0]["config"]["model_spec"] == str(tiny_hf_dir)
    assert {r["metric"] for r in ResultsStore(db).results()} >= {"toy_exact", "toy_exact@blank"}


def test_eval_json_output(tiny_hf_dir, tmp_path, capsys):
    rc = main(["eval", "--model", str(tiny_hf_dir), "--tasks", "toy_eval", "--limit", "3", "--no-store",
               "--no-progress", "--format", "json", *SHORT])
    payload = json.loads(capsys.readouterr().out)
    assert rc == 0 and {r["metric"] for r in payload["results"]} == {"toy_exact", "toy_closed", "toy_open"}


@pytest.mark.parametrize(("flag", "value", "hint"), [
    ("--model", "tinny", "unknown model 'tinny'"),
    ("--tasks", "toy_evl", "did you mean 'toy_eval'"),
])
def test_unknown_names_are_one_line_errors(tiny_hf_dir, capsys, flag, value, hint):
    args = {"--model": str(tiny_hf_dir), "--tasks": "toy_eval", flag: value}
    rc = main(["eval", *[x for kv in args.items() for x in kv], "--no-store"])
    err = capsys.readouterr().err
    assert rc == 2 and hint in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_tiny_model_name_gets_a_suggestion(capsys):
    from harness.models import MODELS

    if "tiny" not in MODELS:
        pytest.skip("the built-in 'tiny' model is not registered in this checkout")
    rc = main(["eval", "--model", "tiyn", "--tasks", "synth_vqa", "--no-store"])
    assert rc == 2 and "did you mean 'tiny'" in capsys.readouterr().err


def test_vqa_rad_real_images(tiny_hf_dir, shared_data, tmp_path, capsys):
    from harness.metrics import METRICS
    from harness.tasks import get_task

    try:
        missing = [m for m in get_task("vqa_rad").metrics if m not in METRICS]
    except HarnessError as exc:
        pytest.skip(f"vqa_rad task not available: {exc}")
    if missing:
        pytest.skip(f"vqa_rad metrics not registered yet: {', '.join(missing)}")
    rc = main(["eval", "--model", str(tiny_hf_dir), "--tasks", "vqa_rad", "--data-dir", str(shared_data),
               "--limit", "8", "--store", str(tmp_path / "r.sqlite"), "--no-progress", *SHORT])
    assert rc == 0, capsys.readouterr().err
    rows = ResultsStore(tmp_path / "r.sqlite").results()
    assert rows and all(r["task"] == "vqa_rad" for r in rows)
    assert sum(r["n"] for r in rows if r["metric"] == "closed_accuracy") + \
        sum(r["n"] for r in rows if r["metric"] == "open_recall") == 8


@pytest.mark.slow
def test_tiny_on_the_synthetic_suite(request, tmp_path, capsys):
    """The README's first command, on a few items: the trained tiny model from the session fixture."""
    try:
        request.getfixturevalue("tiny_model_dir")  # trains and caches 'tiny' under the session's HARNESS_HOME
    except pytest.FixtureLookupError:
        pytest.skip("the tiny_model_dir fixture is not available in this checkout")
    rc = main(["eval", "--model", "tiny", "--tasks", "synth_vqa,synth_report", "--limit", "6", "--no-progress",
               "--store", str(tmp_path / "r.sqlite")])
    out = capsys.readouterr().out
    assert rc == 0 and "synth_vqa" in out and "synth_report" in out
    assert {r["task"] for r in ResultsStore(tmp_path / "r.sqlite").results()} == {"synth_vqa", "synth_report"}
