"""examples/ci/factuality.yml, checked without GitHub: ``act`` is not available here, so the workflow is parsed
and each of its shell steps that the harness runs is executed as written (bash, the workflow's env), with the
tiny model as the candidate, a limit of 2 items per task, and the real VQA-RAD and IU-Xray files as data (synth_report stands in for IU-Xray where its
images are absent).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "examples" / "ci" / "factuality.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _steps(workflow: dict) -> dict[str, dict]:
    return {step.get("name") or step.get("uses"): step for step in workflow["jobs"]["gate"]["steps"]}


def test_the_workflow_installs_pinned_restores_gates_and_always_reports(workflow):
    job = workflow["jobs"]["gate"]
    steps = _steps(workflow)
    runs = {name: step.get("run", "") for name, step in steps.items()}
    assert "-c constraints.txt" in runs["Install the harness with its pinned versions (CPU torch)"]
    restore = steps["Restore the pinned baseline"]
    assert "gh release download" in restore["run"] and restore["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert "examples/ci/fetch_data.sh" in runs["Fetch the data (hook)"]
    tasks = job["env"]["TASKS"].split(",")
    families = {__import__("harness.tasks", fromlist=["get_task"]).get_task(t).family for t in tasks}
    assert families == {"vqa", "report"} and "synth_probe" in tasks  # VQA, reports (hallucination) and probes
    gate = steps["Regression gate"]
    assert gate["continue-on-error"] is True and gate["id"] == "gate"
    for name in ("Publish the report", "Show the JUnit results", "Upload the report and the candidate's predictions",
                 "Fail the job when the gate failed"):
        assert steps[name]["if"].startswith("always()"), name  # reached when the gate exits 1 or 2
    assert steps["Show the JUnit results"]["with"]["report_paths"] == "regress.xml"
    assert "steps.gate.outcome == 'failure'" in steps["Fail the job when the gate failed"]["if"]
    names = list(steps)
    assert names.index("Regression gate") < names.index("Publish the report") < names.index(
        "Fail the job when the gate failed") == len(names) - 1
    assert "--tasks vqa_rad synth_probe" not in WORKFLOW.read_text()


def _bash(script: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_each_harness_step_runs_as_written(workflow, tmp_path, tiny_model_dir, shared_data):
    """Restore (simulated by evaluating the baseline the same way), fetch, evaluate, gate, report."""
    steps = _steps(workflow)
    env = {**os.environ, **{k: str(v) for k, v in workflow["jobs"]["gate"]["env"].items()}}
    bin_dir = str(Path(sys.executable).parent)
    env.update({"PATH": bin_dir + os.pathsep + env.get("PATH", ""), "HARNESS_DATA": str(tmp_path / "data"),
                "CANDIDATE": str(tiny_model_dir), "LIMIT": "2", "FACTUALITY_DATA_SOURCE": str(shared_data),
                "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), "OMP_NUM_THREADS": "1"})
    env.pop("HARNESS_STORE", None)
    if not any((shared_data / "iu_xray").rglob("*.png")):  # the shared copy holds IU-Xray's annotations only
        env["TASKS"] = env["TASKS"].replace("iu_xray", "synth_report")  # the same report metrics and gate
    hook = steps["Fetch the data (hook)"]["run"].replace("examples/ci/", str(REPO / "examples" / "ci") + "/")
    done = _bash(hook, tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "vqa_rad").is_dir() and (tmp_path / "data" / "iu_xray").is_dir()
    done = _bash(steps["Evaluate the candidate"]["run"], tmp_path, env)
    assert done.returncode == 0, done.stderr[-2000:]
    # the restored baseline: what the release asset would hold for this model, its own run directory (greedy
    # decoding gives the same answers when the main branch evaluates the same model the same way)
    shutil.copytree(tmp_path / "candidate", tmp_path / "baseline")
    gate = steps["Regression gate"]["run"]
    done = _bash(gate, tmp_path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("PASS (")
    assert _bash(steps["Publish the report"]["run"], tmp_path, env).returncode == 0
    assert "**PASS" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "regress.xml").is_file()
    # a candidate that misses an item: the gate exits 2 and the report step still has a report to publish
    partial = tmp_path / "candidate" / "predictions" / "vqa_rad.jsonl"
    partial.write_text("".join(partial.read_text().splitlines(keepends=True)[1:]))
    done = _bash(gate, tmp_path, env)
    assert done.returncode == 2 and "misses 1 of" in done.stderr
    assert _bash(steps["Publish the report"]["run"], tmp_path, env).returncode == 0
    assert "REFUSED" in (tmp_path / "summary.md").read_text()
    shutil.rmtree(tmp_path / "data")
