"""``harness study --executor local|ray|slurm`` (issue 31): a study whose runs execute as Ray tasks or submitit jobs
gives the numbers of the sequential study; workers write only their run folders and never the SQLite store; a
failed run is retried then reported with its log; a study stopped mid-way resumes on any executor without
training a finished run again.

Every study here shares one results store and HARNESS_HOME, so the base evaluation and the pairs (content-keyed
caches) are computed once for the module, as a coordinator does before its fan-out."""

from __future__ import annotations

import json
import sqlite3
import sys

import pytest

from harness.core.errors import HarnessError

# the smallest study that still trains: 2 optimizer steps at a rate large enough that seeds and methods differ
FLAGS = ["--model", "tiny", "--methods", "base,dpo,simpo", "--seeds", "2", "--tasks", "synth_vqa", "--train-limit", "8",
         "--eval-limit", "8", "--batch-size", "4", "--max-steps", "2", "--lr", "1e-2", "--lr-rule", "fixed",
         "--n-boot", "200", "--no-progress"]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return str(tmp_path_factory.mktemp("executors") / "results.sqlite")


def _study(capsys, store_path, *extra):
    from harness.cli import main

    capsys.readouterr()
    code = main(["study", *FLAGS, "--store", store_path, "--format", "json", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    return json.loads(out)


@pytest.fixture(scope="module")
def reference(tiny_model_dir, store_path):
    """The sequential study's records (the default executor)."""
    from harness.experiments.study import report, run_study

    study = run_study(_config(store_path), study_id="exec-local", progress=False)
    return report(study, store_path, n_boot=200)["records"], study


def _config(store_path, methods="base,dpo,simpo", seeds=(0, 1)):
    from harness.experiments.pipeline import RunConfig
    from harness.experiments.study import StudyConfig, parse_methods

    run = RunConfig(model="tiny", tasks=("synth_vqa",), train_limit=8, eval_limit=8, store=store_path,
                    train={"batch_size": 4, "max_steps": 2, "lr": 1e-2})
    return StudyConfig(methods=parse_methods(methods), seeds=list(seeds), run=run, lr_rule="fixed")


def _strict(records):
    """Records as the CLI prints them (strict JSON)."""
    from harness.cli.common import _strict as strict

    return json.loads(json.dumps(strict(records), default=str))


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'medpo-harness[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def _mtimes(study_id):
    """Each finished run's trained-model folder and its run record: rewritten only if the run trained again."""
    from harness.core.paths import runs_dir
    from harness.experiments.study import load_study

    return {r["run_id"]: ((runs_dir() / r["run_id"] / "train" / "model").stat().st_mtime_ns,
                          (runs_dir() / r["run_id"] / "pipeline.json").stat().st_mtime_ns)
            for r in load_study(study_id).runs if r["state"] == "done"}


@pytest.mark.slow
def test_ray_study_gives_the_sequential_numbers_and_only_the_coordinator_stores(ray_cluster, reference, store_path,
                                                                                 capsys):
    from harness.core.paths import runs_dir
    from harness.experiments.study import load_study
    from harness.results.store import ResultsStore

    records, local = reference
    # not a vacuous equality: the trained runs moved away from the base and from each other
    by = {(r["method"], r["metric"]): r for r in _strict(records)}
    assert by[("dpo", "closed_accuracy")]["mean"] != by[("base", "closed_accuracy")]["mean"]
    assert by[("dpo", "closed_accuracy")]["sd"] > 0

    got = _study(capsys, store_path, "--study-id", "exec-ray", "--executor", "ray", "--max-parallel", "2",
                 "--executor-option", "poll_s=0.2")
    assert got == _strict(records)
    study = load_study("exec-ray")
    assert [r["state"] for r in study.runs] == ["done"] * 4
    assert {r["run_id"] for r in study.runs}.isdisjoint({r["run_id"] for r in local.runs})  # trained anew
    stored = {r["run_id"] for r in ResultsStore(store_path).runs()}
    for record in study.runs:
        folder = runs_dir() / record["run_id"]
        # the worker wrote its run folder (the store row it would have written, for the coordinator to ingest)
        assert json.loads((folder / "study_record.json").read_text())["run"]["run_id"] == record["run_id"]
        assert record["run_id"] in stored and record["pairs"] == 8
        assert "attempt started" in (study.folder / "logs" / f"{record['run_id']}.log").read_text()


@pytest.mark.slow
def test_a_ray_study_stopped_mid_way_resumes_on_slurm_without_retraining_finished_runs(
        ray_cluster, reference, store_path, capsys, monkeypatch):
    """The coordinator is interrupted while runs are in flight; the rerun (submitit's local executor: each run a
    subprocess) ingests what the workers finished, trains only the rest, and ends with the sequential table."""
    import harness.experiments.study.worker as worker
    from harness.core.paths import runs_dir
    from harness.experiments.study import load_study, run_study
    from harness.experiments.study.executors import ExecutorSpec

    real_ingest, ingested = worker.ingest, []

    def interrupt_after_two(store, folder):
        if len(ingested) == 2:
            raise KeyboardInterrupt
        ingested.append(folder.name)
        return real_ingest(store, folder)

    monkeypatch.setattr(worker, "ingest", interrupt_after_two)
    with pytest.raises(KeyboardInterrupt):
        run_study(_config(store_path), study_id="exec-resume", progress=False,
                  executor=ExecutorSpec("ray", ["poll_s=0.2"], max_parallel=2))
    monkeypatch.undo()
    stopped = load_study("exec-resume").runs
    assert sorted(r["state"] for r in stopped) == ["done", "done", "running", "running"]
    before = _mtimes("exec-resume")
    assert sorted(before) == sorted(ingested)
    # the run whose ingestion was interrupted is complete in its folder (the last in flight may be too): the rerun
    # ingests such folders and trains them not
    finished = [r["run_id"] for r in stopped if r["state"] == "running"
                and worker.complete(runs_dir() / r["run_id"], r["run_id"])]
    assert finished
    for run_id in finished:
        before[run_id] = ((runs_dir() / run_id / "train" / "model").stat().st_mtime_ns,
                          (runs_dir() / run_id / "pipeline.json").stat().st_mtime_ns)

    got = _study(capsys, store_path, "--study-id", "exec-resume", "--executor", "slurm",
                 "--executor-option", "cluster=local", "--executor-option", "poll_s=0.2")
    assert got == _strict(reference[0])
    after = _mtimes("exec-resume")
    assert len(after) == 4 and {k: after[k] for k in before} == before  # the finished runs were not trained again


_IN_WORKER: list[str] = []  # the job an InlineExecutor is running now
_WORKER_CONNECTS: list[str] = []  # every sqlite3.connect made while one ran


def _record_connects(event, args):
    if event == "sqlite3.connect" and _IN_WORKER:
        _WORKER_CONNECTS.append(str(args[0]))


class InlineExecutor:
    """The executor interface run in this process (as submitit's debug executor would), to count attempts."""

    name = "inline"

    def __init__(self):
        self.done, self.submitted = [], []

    def submit(self, job):
        from harness.experiments.study.worker import run_job

        self.submitted.append(job.key)
        _IN_WORKER.append(job.key)
        try:
            self.done.append((job, run_job(job), None))
        except Exception as exc:  # what a worker process reports
            self.done.append((job, None, exc))
        finally:
            _IN_WORKER.pop()
        return len(self.done) - 1

    def wait(self, handles, timeout):
        return list(handles)

    def result(self, handle):
        from harness.experiments.study.executors import RunFailed

        _, outcome, exc = self.done[handle]
        if exc is not None:
            raise RunFailed(f"{type(exc).__name__}: {exc}")
        return outcome

    def cancel(self, handles):
        pass

    def close(self):
        pass


@pytest.mark.slow
def test_failed_runs_are_retried_then_reported_with_their_log_and_workers_never_open_the_store(
        reference, store_path, monkeypatch, caplog):
    import harness.experiments.pipeline as pipeline
    from harness.core.paths import runs_dir
    from harness.experiments.study import load_study, run_study
    from harness.experiments.study.executors import Coordinator, ExecutorSpec
    from harness.experiments.study.runner import open_study
    from harness.results.store import ResultsStore

    real_run, calls = pipeline.run, []

    def flaky(config, *, run_id=None, store=None, **kwargs):
        calls.append((config.train.seed, type(store).__name__))
        if config.train.seed == 1 or calls.count((0, "RunFolderStore")) == 1:
            raise HarnessError(f"simulated node failure in seed {config.train.seed}")
        return real_run(config, run_id=run_id, store=store, **kwargs)

    sys.addaudithook(_record_connects)  # active only while an InlineExecutor runs a job
    monkeypatch.setattr(pipeline, "run", flaky)
    config = _config(store_path, methods="dpo")
    spec = ExecutorSpec("slurm", ["retries=1", "poll_s=0"])  # a real executor's options; runs go to the inline one
    study = open_study(config, "exec-retry")
    study.state["base_run_id"] = reference[1].state["base_run_id"]
    executor = InlineExecutor()
    from harness.experiments.study import budget

    planned = budget.plan(study, config, {e.label: e for e in config.methods})
    with pytest.raises(HarnessError, match=r"1 run\(s\) failed after 2 tries: dpo\|seed 1 .*simulated node failure"):
        Coordinator(study, config, spec, progress=False, executor=executor).fan_out(
            {e.label: e for e in config.methods}, planned, list(study.runs))
    assert executor.submitted == ["dpo|seed 0", "dpo|seed 1", "dpo|seed 0", "dpo|seed 1"]
    assert "simulated node failure in seed 1" in caplog.text and "last lines of its log" in caplog.text
    saved = {r["seed"]: r for r in load_study("exec-retry").runs}
    assert saved[0]["state"] == "done" and saved[1]["state"] == "failed"
    assert saved[0]["run_id"] in {r["run_id"] for r in ResultsStore(store_path).runs()}  # ingested by the coordinator
    assert "simulated node failure in seed 1" in (study.folder / "logs" / f"{saved[1]['run_id']}.log").read_text()
    # every worker call stored into its run folder and no worker connected to SQLite at all (the guard would have
    # raised on the store; this sees any database)
    assert {name for _, name in calls} == {"RunFolderStore"} and len(calls) == 4
    assert _WORKER_CONNECTS == []
    trained = (runs_dir() / saved[0]["run_id"] / "train" / "model").stat().st_mtime_ns

    monkeypatch.setattr(pipeline, "run", real_run)
    study = run_study(config, study_id="exec-retry", progress=False)  # the failed run, now on the local executor
    assert [r["state"] for r in study.runs] == ["done", "done"]
    assert (runs_dir() / saved[0]["run_id"] / "train" / "model").stat().st_mtime_ns == trained


def test_a_worker_cannot_open_the_results_store(tmp_path):
    """The guard every worker runs under: SQLite refuses the store path inside it and nowhere else."""
    from harness.experiments.study.worker import RunFolderStore, refusing_store
    from harness.results.store import ResultsStore

    path = tmp_path / "results.sqlite"
    with refusing_store([str(path)]):
        with pytest.raises(HarnessError, match="study worker tried to open the results store results.sqlite"):
            ResultsStore(path)
        sqlite3.connect(tmp_path / "other.sqlite").close()  # other databases are a library's business
    assert ResultsStore(path).runs() == []  # outside a worker the store opens as ever
    folder_store = RunFolderStore("r1", {"run_id": "base", "status": "approved"}, [])
    with pytest.raises(HarnessError, match="never opens the results store"):
        folder_store._connect()
    with pytest.raises(HarnessError, match="asked to store run base"):
        from harness.results.store import RunRecord

        folder_store.add_run(RunRecord(model="m", run_id="base"), [])


def test_executor_options_are_checked_before_any_model_loads(capsys, monkeypatch):
    import importlib.util

    import harness.experiments.pipeline as pipeline
    from harness.cli import main

    monkeypatch.setattr(pipeline, "resolve_base_model", lambda *a: (_ for _ in ()).throw(AssertionError("loaded")))
    base = ["study", "--methods", "base,dpo", "--seeds", "1", "--lr-rule", "fixed"]
    for extra, message in [
        (["--executor", "ray", "--executor-option", "num_gpu=1"], "did you mean 'num_gpus'"),
        (["--executor", "slurm", "--executor-option", "gpus=two"], "gpus=two: expected int"),
        (["--executor", "slurm", "--executor-option", "cluster=cloud"], "one of slurm, local, debug"),
        (["--max-parallel", "2"], "--executor local runs one run at a time"),
        (["--executor", "ray", "--max-parallel", "0"], "--max-parallel must be at least 1"),
        (["--executor", "ray", "--executor-option", "retries=-1"], "must not be negative"),
    ]:
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    assert main([*base, "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert "needs ray, which is not installed: pip install 'medpo-harness[ray]'" in err


def test_ray_is_imported_only_by_the_ray_executor():
    import subprocess

    code = ("import sys; from harness.cli import main; from harness.experiments.study import executors, worker, runner; "
            "from harness.experiments.study.executors import ExecutorSpec; ExecutorSpec('local'); "
            "print('ray' in sys.modules, 'submitit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
