"""``harness regress`` as CI runs it, on synthetic run directories (no model): comparability refusals (defect 6),
baselines by pin name (defect 7), output a team can decide from (defect 8), and one ``--tasks`` syntax (defect 1).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from harness.cli import build_parser, main
from harness.core.io import write_json
from harness.evaluation.config import EvalConfig
from harness.results import ResultRow, ResultsStore, RunRecord

N = 240
OLD_RUNS_TABLE = """CREATE TABLE runs (run_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, model TEXT NOT NULL,
    base_model TEXT, method TEXT, model_type TEXT, config TEXT NOT NULL DEFAULT '{}',
    versions TEXT NOT NULL DEFAULT '{}', harness_version TEXT, git_commit TEXT, seed INTEGER,
    status TEXT NOT NULL DEFAULT 'approved', source TEXT NOT NULL DEFAULT 'local', predictions_dir TEXT,
    fingerprint TEXT UNIQUE);"""


def _items(seed=0):
    rng = np.random.default_rng(seed)
    closed = [("closed", f"Is there a finding {i}?", "yes" if rng.random() < 0.5 else "no") for i in range(N)]
    opened = [("open", f"Where is lesion {i}?", "right upper lung") for i in range(N // 2)]
    return closed + opened


def _answer(kind, reference, right):
    if kind == "closed":
        return reference if right else ("no" if reference == "yes" else "yes")
    return reference if right else "left lower lung"


def write_run(folder, p_right, *, seed, limit=None, config=None, tasks=("synth_vqa",), question_suffix=""):
    """A run directory as harness eval writes it: run.json, results.json and predictions/<task>.jsonl."""
    rng = np.random.default_rng(seed)
    (folder / "predictions").mkdir(parents=True)
    for task in tasks:
        lines = []
        for i, (kind, question, reference) in enumerate(_items()[:limit]):
            right = rng.random() < p_right
            lines.append(json.dumps({"id": str(i), "question": question + question_suffix, "answer_type": kind,
                                     "prediction": _answer(kind, reference, right), "reference": reference,
                                     "metadata": {}}))
        (folder / "predictions" / f"{task}.jsonl").write_text("\n".join(lines) + "\n")
    write_json(folder / "run.json", {"run_id": folder.name, "model": {"name": "m"}, "tasks": list(tasks),
                                     "config": {**EvalConfig(limit=limit).to_dict(), **(config or {})}})
    write_json(folder / "results.json", {"results": [{"task": t, "task_version": "1.0"} for t in tasks]})
    return str(folder)


@pytest.fixture
def runs(tmp_path):
    base = write_run(tmp_path / "base", 0.9, seed=0)
    return {"base": base, "same": write_run(tmp_path / "same", 0.9, seed=0),
            "worse": write_run(tmp_path / "worse", 0.6, seed=1), "tmp": tmp_path}


def _regress(*args):
    return main(["regress", "--n-boot", "500", *args])


def test_identical_run_passes_with_a_verdict_line_on_stdout(runs, capsys):
    assert _regress("--baseline", runs["base"], "--candidate", runs["same"], "--max-drop", "2") == 0
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert lines[-1] == "PASS (2 metrics gated, none regressed: no drop beyond 2 (non-inferior))"
    assert "closed_accuracy" in out.out and "open_recall" in out.out and "bleu" not in out.out
    # units as harness eval prints them (x100): 0.9-ish accuracy shows as ~90
    row = next(line for line in lines if "closed_accuracy" in line).split()
    assert 80 < float(row[3]) < 100
    # a --max-drop below what n items can detect is said next to it
    assert "is below the minimum detectable drop" in out.err


def test_a_worse_run_fails_with_json_numbers_and_reports(runs, capsys):
    md, junit = runs["tmp"] / "r.md", runs["tmp"] / "r.xml"
    code = _regress("--baseline", runs["base"], "--candidate", runs["worse"], "--format", "json",
                    "--report-md", str(md), "--junit", str(junit))
    assert code == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "REGRESSION" and report["regressed"] == 2 and report["gated"] == 2
    row = next(r for r in report["rows"] if r["metric"] == "closed_accuracy")
    low, high = row["ci"]
    assert isinstance(low, float) and low <= row["delta"] <= high < 0
    assert row["baseline"] > 80 and row["delta"] < -15 and row["verdict"] == "regressed"
    assert "**REGRESSION in 2 of 2 metrics" in md.read_text()
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("failures") == "2" and len(suite.findall("testcase")) == 2
    # the table output ends with the verdict line on stdout
    assert _regress("--baseline", runs["base"], "--candidate", runs["worse"]) == 1
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("REGRESSION in 2 of 2 metrics: synth_vqa/")


def test_holm_runs_over_the_gated_metrics_only(runs):
    from harness.regress.compare import RegressConfig, compare_sources

    default = compare_sources(runs["base"], runs["worse"], RegressConfig(n_boot=500))
    wide = compare_sources(runs["base"], runs["worse"], RegressConfig(
        n_boot=500, metrics=["closed_accuracy", "closed_accuracy_llava_med", "open_recall", "open_exact_match",
                             "open_f1"]))
    first = {r.metric: r for r in default.rows}["closed_accuracy"]
    assert first.p_adjusted == pytest.approx(min(1.0, 2 * first.p_value))  # Holm over 2, not over every metric
    assert len(wide.gated) == 5


def test_a_partial_candidate_is_refused_unless_allowed(runs, capsys):
    partial = write_run(runs["tmp"] / "partial", 0.9, seed=0, limit=60)
    md = runs["tmp"] / "refused.md"
    assert _regress("--baseline", runs["base"], "--candidate", partial, "--report-md", str(md)) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ")
    assert "misses" in err and "--allow-partial" in err
    assert "REFUSED" in md.read_text()  # the CI report step still has a report to show
    assert _regress("--baseline", runs["base"], "--candidate", partial, "--allow-partial") == 0
    assert "misses" in capsys.readouterr().err
    # a task the candidate did not run at all is missing items too
    two = write_run(runs["tmp"] / "two", 0.9, seed=0, tasks=("synth_vqa", "vqa_rad"))
    assert _regress("--baseline", two, "--candidate", runs["same"]) == 2
    assert "vqa_rad" in capsys.readouterr().err


@pytest.mark.parametrize(("config", "key"), [
    ({"do_sample": True, "temperature": 1.0}, "decoding"),
    ({"max_new_tokens_closed": 2}, "token_budgets"),
    ({"split": "train"}, "split"),
])
def test_a_differently_run_candidate_is_refused_unless_allowed(runs, capsys, config, key):
    other = write_run(runs["tmp"] / key, 0.9, seed=0, config=config)
    assert _regress("--baseline", runs["base"], "--candidate", other) == 2
    err = capsys.readouterr().err
    assert f"{key} differ" in err and f"--allow-diff {key}" in err
    assert _regress("--baseline", runs["base"], "--candidate", other, "--allow-diff", key) == 0


def test_different_prompts_and_task_versions_are_refused(runs, capsys):
    reworded = write_run(runs["tmp"] / "reworded", 0.9, seed=0, question_suffix=" Answer briefly.")
    assert _regress("--baseline", runs["base"], "--candidate", reworded) == 2
    assert "prompts differ" in capsys.readouterr().err
    assert _regress("--baseline", runs["base"], "--candidate", reworded, "--allow-diff", "prompts") == 0
    bumped = write_run(runs["tmp"] / "bumped", 0.9, seed=0)
    write_json(runs["tmp"] / "bumped" / "results.json", {"results": [{"task": "synth_vqa", "task_version": "2.0"}]})
    assert _regress("--baseline", runs["base"], "--candidate", bumped) == 2
    assert "task_versions differ" in capsys.readouterr().err
    assert _regress("--baseline", runs["base"], "--candidate", runs["same"], "--allow-diff", "colour") == 2


def test_runs_are_candidates_until_approved_and_pinned_by_name(runs, tmp_path, capsys):
    db = tmp_path / "store.sqlite"
    store = ResultsStore(db)
    for name in ("base", "worse"):
        store.add_run(RunRecord(model=name, run_id=f"20250101-00000{len(name)}-{name}", predictions_dir=runs[name],
                                harness_version="0.1"), [ResultRow("synth_vqa", "closed_accuracy", 0.9)])
    assert {r["review"] for r in store.runs()} == {"candidate"}
    assert main(["results", "pin", "20250101-000004-base", "--name", "release", "--store", str(db)]) == 2
    assert "approve it first" in capsys.readouterr().err
    assert main(["results", "approve", "20250101-000004-base", "--store", str(db)]) == 0
    assert main(["results", "pin", "20250101-000004-base", "--name", "release", "--store", str(db)]) == 0
    assert main(["results", "baselines", "--store", str(db), "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 2)[-1])
    assert [(r["run_id"], r["pins"]) for r in listed] == [("20250101-000004-base", ["release"])]
    assert store.runs(run_ids=["20250101-000005-worse"])[0]["status"] == "approved"  # moderation is separate
    assert _regress("--baseline", "release", "--candidate", "20250101-000005-worse", "--store", str(db)) == 1
    assert "REGRESSION" in capsys.readouterr().out


def test_an_old_store_gains_the_review_column(tmp_path):
    import sqlite3

    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as conn:  # the schema before the gate's review state
        conn.executescript(OLD_RUNS_TABLE + "INSERT INTO runs (run_id, created_at, model) VALUES ('r1', '2025', 'm');")
    store = ResultsStore(db)
    assert store.get_run("r1")["review"] == "candidate" and store.approve("r1") == "r1"
    assert store.baselines()[0]["run_id"] == "r1"


@pytest.mark.parametrize("argv", [["--tasks", "a,b"], ["--tasks", "a", "b"], ["--tasks", "a", "--tasks", "b"],
                                  ["--tasks", "a,", "b", "--tasks", "a"]])
def test_one_tasks_syntax_across_the_cli(argv):
    """Defect 1: eval took commas and regress spaces; now every command takes both and repeated flags."""
    parser = build_parser()
    commands = {
        "eval": ["eval", "--model", "tiny"], "regress": ["regress", "--baseline", "x", "--candidate", "y"],
        "results": ["results"], "sft": ["sft", "--model", "tiny"], "export": ["export", "lm-eval", "out"],
    }
    for command, head in commands.items():
        assert parser.parse_args(head + argv).tasks == ["a", "b"], command


def test_docs_and_ci_example_use_the_one_syntax():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for path in [root / "docs" / "regression.md", root / "examples" / "ci" / "factuality.yml"]:
        for line in path.read_text().splitlines():
            if "--tasks" in line and line.strip().startswith("harness "):  # the commands, not the prose
                value = line.split("--tasks", 1)[1].split()
                # the documented form is a,b: a second bare word after the first task would be a b
                assert len(value) == 1 or value[1][0] in "-#\\$", (path, line)


def test_unknown_names_in_results_filters_suggest_the_right_one(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    ResultsStore(db).add_run(RunRecord(model="a"), [ResultRow("synth_vqa", "closed_accuracy", 0.5)])
    assert main(["results", "--store", str(db), "--metrics", "closed_acuracy"]) == 2
    assert "did you mean 'closed_accuracy'" in capsys.readouterr().err
    assert main(["results", "--store", str(db), "--tasks", "synth_vq"]) == 2
    assert "did you mean 'synth_vqa'" in capsys.readouterr().err


def test_probes_build_writes_a_balanced_set(tmp_path, monkeypatch, capsys):
    import harness.regress.probes as probes

    rows = [{"id": f"c{i}", "image": f"img{i}.png", "boxes": json.dumps([{"label": lab, "bbox": [0, 0, 1, 1]}])}
            for i, lab in enumerate(["nodule", "mass", "effusion", "nodule"] * 5)]
    monkeypatch.setattr(probes, "source_rows", lambda task, split, **kw: rows)
    out = tmp_path / "probes.jsonl"
    assert main(["probes", "build", "--task", "synth_vqa", "--out", str(out), "--settings", "popular,adversarial"]) == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert {p["probe_setting"] for p in written} == {"popular", "adversarial"}
    assert sum(p["answer"] == "yes" for p in written) == sum(p["answer"] == "no" for p in written) == 40
    assert "popular 20 yes / 20 no" in capsys.readouterr().out
    assert main(["probes", "build", "--task", "synth_vqa", "--out", str(out), "--settings", "sideways"]) == 2
    assert "unknown probe setting 'sideways'" in capsys.readouterr().err
