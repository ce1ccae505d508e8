"""``harness eval`` end to end: the table, the store, one-line errors for bad names."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.core.errors import HarnessError
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


class _InterruptedModel:
    """Answers like the oracle, then is interrupted (Ctrl-C) at its second batch."""

    def __init__(self, inner):
        self.inner, self.name, self.calls = inner, inner.name, 0

    def describe(self):
        return self.inner.describe()

    def generate(self, images, prompts, config=None):
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return self.inner.generate(images, prompts, config)


@pytest.mark.parametrize("own_folder", [True, False], ids=["run-folder", "output-dir"])
def test_an_interrupted_eval_names_the_flags_that_resume_it(oracle_cls, tmp_path, monkeypatch, capsys, own_folder):
    import re

    resumed = oracle_cls()
    models = iter([_InterruptedModel(oracle_cls()), resumed])
    monkeypatch.setattr("harness.models.load_model", lambda *args, **kwargs: next(models))
    argv = ["eval", "--model", str(tmp_path), "--tasks", "toy_eval", "--batch-size", "2", "--no-store",
            "--no-progress"]
    if not own_folder:
        argv += ["--output-dir", str(tmp_path / "out dir")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    run_id = re.search(r"^run (\S+): evaluating", err, re.MULTILINE).group(1)
    hint = f"--run-id {run_id}" + ("" if own_folder else f" --output-dir '{tmp_path / 'out dir'}'")
    assert f"error: interrupted: rerun with {hint} to resume" in err.splitlines()
    assert main([*argv, "--run-id", run_id, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == run_id
    assert 0 < resumed.answered < 14  # the saved answers were kept: the same run resumed, not a new one


def test_eval_on_a_run_id_in_use_exits_2_before_the_model_loads(tmp_path, monkeypatch, capsys):
    import subprocess
    import sys

    def no_model(*args, **kwargs):
        raise AssertionError("the second evaluation loaded a model")

    monkeypatch.setattr("harness.models.load_model", no_model)
    hold = "import sys\nfrom harness.core.paths import run_lock\nwith run_lock('busy'):\n    print('held', flush=True)\n" \
           "    sys.stdin.read()\n"
    holder = subprocess.Popen([sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["eval", "--model", str(tmp_path), "--tasks", "toy_eval", "--run-id", "busy", "--no-store"]) == 2
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: run 'busy' is in use by another process (pid {holder.pid})") and "\n" not in err
