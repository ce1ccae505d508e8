"""The example task plugin (``examples/harness-task-example``) installed through pip and found through the
``harness.tasks`` entry point, and the public loading toolkit it is written against (``harness.tasks.loading``).

The plugin is installed with ``pip install --no-deps --no-build-isolation --no-index --target DIR`` from a copy
of the example (offline; the venv and the source tree stay untouched); ``DIR`` then goes on ``PYTHONPATH`` /
``sys.path``, where ``importlib.metadata`` finds the entry point.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core.errors import DataError
from harness.core.registry import Registry

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "examples" / "harness-task-example"
SAMPLE = PLUGIN / "sample_data"


def run_cli(*args: str, pythonpath: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    code = "import sys; from harness.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          timeout=600, check=False)


@pytest.fixture(scope="module")
def task_site(tmp_path_factory) -> Path:
    if shutil.which("pip", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("pip is not available in this environment")
    work = tmp_path_factory.mktemp("task-plugin")
    source = shutil.copytree(PLUGIN, work / "src", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    site = work / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return site


@pytest.fixture
def clinic_vqa(task_site, monkeypatch):
    monkeypatch.syspath_prepend(str(task_site))
    registry = Registry("task", entry_point_group="harness.tasks")
    assert registry.origin("clinic_vqa") == "harness-task-example"
    return registry.get("clinic_vqa")


def test_the_public_loading_module_exports_what_it_documents():
    from harness.tasks import _loading, loading

    for name in loading.__all__:
        assert getattr(loading, name) is not None, name
    assert loading.build_dataset is _loading.build_dataset and loading.BadRecords is _loading.BadRecords
    assert set(loading.__all__) >= {"build_dataset", "read_records", "LoadOptions", "option_field", "vqa_row",
                                    "BadRecords", "Task", "DataError"}


def test_installed_task_is_listed_with_its_sizes_and_options(task_site):
    listed = run_cli("tasks", "--data-dir", str(SAMPLE), "--format", "json", pythonpath=task_site)
    assert listed.returncode == 0, listed.stderr
    row = {r["name"]: r for r in json.loads(listed.stdout)}["clinic_vqa"]
    assert row["sizes"] == {"train": 6, "test": 6} and row["family"] == "vqa"
    assert [o["name"] for o in row["options"]] == ["check_images", "strict", "modality"]


@pytest.mark.slow
def test_harness_eval_scores_the_plugin_task(task_site, tiny_model_dir, tmp_path):
    done = run_cli("eval", "--model", "tiny", "--tasks", "clinic_vqa", "--limit", "2", "--data-dir", str(SAMPLE),
                   "--store", str(tmp_path / "store.sqlite"), "--output-dir", str(tmp_path / "run"),
                   "--format", "json", "--no-progress", pythonpath=task_site)
    assert done.returncode == 0, done.stderr[-3000:]
    results = {r["metric"]: r for r in json.loads(done.stdout)["results"] if r["task"] == "clinic_vqa"}
    assert results["closed_accuracy"]["n"] == 2  # test.csv's first two rows, both closed questions
    assert 0 <= results["closed_accuracy"]["value"] <= 100
    files = [path for path in (tmp_path / "run").rglob("*.jsonl")
             if "clinic_vqa" in str(path.relative_to(tmp_path)) and ".part-" not in path.name]
    predictions = [json.loads(line) for path in files for line in path.read_text().splitlines() if line.strip()]
    assert {p["id"]: p["reference"] for p in predictions} == {"t1": "yes", "t2": "no"}  # read from test.csv
    assert len(predictions) == 2


def test_an_option_filters_and_a_bad_row_is_skipped_or_refused(clinic_vqa, tmp_path):
    assert clinic_vqa.sizes(SAMPLE, modality="ct") == {"train": 3, "test": 3}
    data = shutil.copytree(SAMPLE, tmp_path / "data")
    path = data / "clinic_vqa" / "test.csv"
    rows = list(csv.DictReader(path.open(newline="")))
    rows[2]["answer"] = ""  # line 4 of the file: header, t1, t2, t3
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert clinic_vqa.size_report(data) == ({"train": 6, "test": 5}, {"test": "1 skipped: empty answer"})
    assert clinic_vqa.load("test", data)["id"] == ["t1", "t2", "t4", "t5", "t6"]
    with pytest.raises(DataError) as error:
        clinic_vqa.load("test", data, strict=True)
    message = str(error.value)
    assert "test.csv" in message and "t3" in message and "answer" in message and "\n" not in message
