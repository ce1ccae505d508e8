"""Where a study's runs execute: ``local`` (one after another in this process, the default), ``ray`` (each run a
Ray task) or ``slurm`` (each run a Slurm job through submitit).

The process that runs ``harness study`` is the coordinator. Before the fan-out it does the shared work once:
the base model's evaluation and every run's pairs (per method and pair seed), both in content-keyed caches
under ``HARNESS_HOME`` (the study folder's filesystem, which workers on other nodes must share). Then it hands
each unfinished run to the executor (``harness.experiments.study.worker.run_job``), at most ``--max-parallel`` at a time.
A worker writes only its own run folder; the coordinator, the store's single writer, ingests each finished
folder. A run that fails (an error, a killed or preempted worker) is submitted again up to ``retries`` times,
then reported with the last lines of its log (``studies/<id>/logs/<run_id>.log``); the other runs go on.

Executor options (``--executor-option KEY=VALUE``) are declared per executor in ``OPTIONS``.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.core.errors import HarnessError

if TYPE_CHECKING:
    from harness.experiments.study.runner import Study, StudyConfig
    from harness.experiments.study.worker import Job

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray", "slurm")
# (type, default, help) per option; "retries" and "poll_s" are the coordinator's, the rest the executor's
_COMMON = {
    "retries": (int, 2, "times a failed or preempted run is submitted again before it is reported"),
    "poll_s": (float, 1.0, "seconds between checks for finished runs"),
}
OPTIONS: dict[str, dict[str, tuple[type, Any, str]]] = {
    "local": {},
    "ray": {
        **_COMMON,
        "address": (str, None, "a running cluster (ray.init(address=...), e.g. 'auto' on one of its nodes); "
                               "unset: a Ray instance on this machine"),
        "num_cpus": (float, 1.0, "CPUs each run reserves"),
        "num_gpus": (float, 0.0, "GPUs each run reserves"),
        "memory_gb": (float, None, "memory each run reserves (Ray's scheduler counts it; unset: none)"),
    },
    "slurm": {
        **_COMMON,
        "cluster": (str, "slurm", "slurm, or submitit's local (subprocesses here) or debug (in this process, "
                                  "enters pdb on an error)"),
        "partition": (str, None, "Slurm partition"),
        "time": (int, 240, "minutes each run may take (the job's time limit)"),
        "gpus": (int, 0, "GPUs per run"),
        "cpus": (int, 4, "CPUs per run"),
        "mem_gb": (float, None, "memory per run in GB (unset: the partition's default)"),
        "account": (str, None, "Slurm account"),
        "qos": (str, None, "Slurm QOS"),
        "constraint": (str, None, "Slurm node constraint (e.g. a100)"),
        "poll_s": (float, 10.0, "seconds between checks for finished runs (sacct is asked at most that often)"),
    },
}


def parse_options(executor: str, pairs: list[str] | dict[str, Any] | None) -> dict[str, Any]:
    """``--executor-option`` values (``KEY=VALUE`` strings or a dict) checked and typed, defaults filled in."""
    from harness.core.options import check_known

    if executor not in EXECUTORS:
        raise HarnessError(f"--executor must be one of {', '.join(EXECUTORS)}, got '{executor}'")
    given: dict[str, Any] = {}
    for item in pairs.items() if isinstance(pairs, dict) else (p.partition("=")[::2] for p in pairs or []):
        key, value = item
        if not str(key).strip():
            raise HarnessError(f"--executor-option expects KEY=VALUE, got {value!r}")
        given[str(key).strip()] = value
    declared = OPTIONS[executor]
    check_known(f"--executor {executor}", given, declared, "executor option")
    options = {}
    for key, (kind, default, _) in declared.items():
        if key not in given:
            options[key] = default
            continue
        try:
            options[key] = kind(given[key])
        except (TypeError, ValueError):
            raise HarnessError(f"--executor-option {key}={given[key]}: expected {kind.__name__}") from None
        if kind in (int, float) and options[key] < 0:
            raise HarnessError(f"--executor-option {key}={given[key]}: must not be negative")
    if executor == "slurm" and options["cluster"] not in ("slurm", "local", "debug"):
        raise HarnessError(f"--executor-option cluster={options['cluster']}: one of slurm, local, debug")
    return options


class Executor:
    """Submits jobs and reports which finished. ``wait`` returns the finished handles among ``handles``;
    ``result`` gives a finished job's outcome or raises its failure."""

    name = "executor"

    def submit(self, job: Job) -> Any:
        raise NotImplementedError

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        raise NotImplementedError

    def result(self, handle: Any) -> dict[str, Any]:
        raise NotImplementedError

    def cancel(self, handles: list[Any]) -> None:
        """Stop running jobs (the coordinator is stopping): each releases its run, to be resumed later."""

    def close(self) -> None:
        pass


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, options: dict[str, Any]):
        try:
            import ray
        except ImportError:
            raise HarnessError("--executor ray needs Ray: pip install 'medpo-harness[ray]'") from None
        self.ray = ray
        self.owns = not ray.is_initialized()
        if self.owns:
            ray.init(address=options["address"], include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
        from harness.experiments.study.worker import run_job

        resources = {"num_cpus": options["num_cpus"], "num_gpus": options["num_gpus"], "max_retries": 0}
        if options["memory_gb"]:
            resources["memory"] = int(options["memory_gb"] * 2**30)
        self.task = ray.remote(**resources)(run_job)  # retries are the coordinator's: it logs and counts them

    def submit(self, job: Job) -> Any:
        return self.task.remote(job)

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        ready, _ = self.ray.wait(list(handles), num_returns=1, timeout=timeout)
        return list(ready)

    def result(self, handle: Any) -> dict[str, Any]:
        try:
            return self.ray.get(handle)
        except self.ray.exceptions.RayTaskError as exc:  # the run raised: its own error, not Ray's wrapper
            cause = getattr(exc, "cause", None) or exc
            raise RunFailed(f"{type(cause).__name__}: {_first_line(cause)}") from None
        except self.ray.exceptions.RayError as exc:  # the worker died: killed, out of memory, node lost
            raise RunFailed(f"{type(exc).__name__}: {_first_line(exc)}") from None

    def cancel(self, handles: list[Any]) -> None:
        for handle in handles:
            self.ray.cancel(handle, force=True)  # the worker exits, so its run lock is released

    def close(self) -> None:
        if self.owns:
            self.ray.shutdown()


class SlurmExecutor(Executor):
    name = "slurm"

    def __init__(self, options: dict[str, Any], folder):
        try:
            import submitit
        except ImportError:
            raise HarnessError("--executor slurm needs submitit: pip install 'medpo-harness[slurm]'") from None
        cluster = options["cluster"]
        self.executor = submitit.AutoExecutor(folder=folder, cluster=None if cluster == "slurm" else cluster)
        if cluster == "slurm" and self.executor.cluster != "slurm":
            raise HarnessError("--executor slurm: no Slurm here (sbatch not found); run on the cluster's login node, "
                               "or pass --executor-option cluster=local to try it on this machine")
        params: dict[str, Any] = {"timeout_min": options["time"], "gpus_per_node": options["gpus"],
                                  "cpus_per_task": options["cpus"], "tasks_per_node": 1, "nodes": 1,
                                  "name": "harness-study"}
        if options["mem_gb"]:
            params["mem_gb"] = options["mem_gb"]
        for key in ("partition", "account", "qos", "constraint"):
            if options[key]:
                params[f"slurm_{key}"] = options[key]
        self.executor.update_parameters(**params)

    def submit(self, job: Job) -> Any:
        from harness.experiments.study.worker import run_job

        return self.executor.submit(run_job, job)

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        deadline = time.monotonic() + timeout
        while True:
            finished = [h for h in handles if h.done()]
            if finished or time.monotonic() >= deadline:
                return finished
            time.sleep(min(1.0, timeout))

    def result(self, handle: Any) -> dict[str, Any]:
        try:
            return handle.result()
        except Exception as exc:  # FailedJobError (the run raised), UncompletedJobError (killed, timed out)
            raise RunFailed(f"{type(exc).__name__}: {_first_line(exc)}") from None

    def cancel(self, handles: list[Any]) -> None:
        for handle in handles:
            handle.cancel(check=False)


class RunFailed(Exception):
    """A run's attempt failed (its message is one line)."""


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    # a job's error often ends with the exception's own message: keep the last line that says something
    return (lines[-1] if lines else repr(exc))[:300]


def make_executor(name: str, options: dict[str, Any], study: Study) -> Executor:
    if name == "ray":
        return RayExecutor(options)
    if name == "slurm":
        return SlurmExecutor(options, study.folder / "submitit")
    raise HarnessError(f"--executor {name} runs in the coordinator itself")


@dataclass
class ExecutorSpec:
    """How a study's runs are executed: ``name`` (EXECUTORS), its checked options, ``max_parallel`` (None: as
    many as the executor schedules at once)."""

    name: str = "local"
    options: dict[str, Any] | None = None
    max_parallel: int | None = None

    def __post_init__(self) -> None:
        self.options = parse_options(self.name, self.options)
        if self.max_parallel is not None and self.max_parallel < 1:
            raise HarnessError(f"--max-parallel must be at least 1, got {self.max_parallel}")
        if self.name == "local" and (self.max_parallel or 1) > 1:
            raise HarnessError("--executor local runs one run at a time: --max-parallel needs --executor ray or slurm")

    def check_installed(self) -> None:
        """A one-line error, before any model loads, when the executor's package is missing (the package itself
        is imported only when runs are submitted)."""
        package = {"ray": ("ray", "ray"), "slurm": ("submitit", "slurm")}.get(self.name)
        if package:
            import importlib.util

            if importlib.util.find_spec(package[0]) is None:
                raise HarnessError(f"--executor {self.name} needs {package[0]}, which is not installed: "
                                   f"pip install 'medpo-harness[{package[1]}]'")


class Coordinator:
    """The coordinator's side of a study on Ray or Slurm: hands runs to the executor (created on first use, one
    per study invocation), ingests what finishes, retries what fails."""

    def __init__(self, study: Study, config: StudyConfig, spec: ExecutorSpec, *, progress: bool = True,
                 executor: Executor | None = None):
        from harness.results.store import ResultsStore

        self.study, self.config, self.spec, self.progress = study, config, spec, progress
        self._executor = executor
        self.store = ResultsStore(config.run.store)

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = make_executor(self.spec.name, self.spec.options, self.study)
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()

    def job(self, key: str, run_id: str, run_config: Any, base_id: str) -> Job:
        from harness.experiments.study.worker import Job, job_environment

        return Job(key=key, run_id=run_id, config=run_config, base=self.store.get_run(base_id),
                   base_results=self.store.results(run_ids=[base_id]),
                   log_path=str(self.study.folder / "logs" / f"{run_id}.log"), guarded=[str(self.store.path)],
                   env=job_environment())

    def fan_out(self, entries: dict, planned: dict, todo: list[dict[str, Any]]) -> None:
        """Run ``todo`` (the study's run records): their pairs first (the shared work, cached by content), then
        the runs themselves on the executor."""
        from harness.experiments.pipeline import prepare_pairs
        from harness.results.store import new_run_id

        study, config = self.study, self.config
        jobs: dict[str, Job] = {}
        by_key = {}
        for record in todo:
            run_config = config.run_config(entries[record["label"]], record["seed"], steps=planned["steps"],
                                           lr=planned["lr"][record["label"]])
            _, record["pairs"] = prepare_pairs(run_config)  # a draw shared by several methods is built once
            record["run_id"] = record["run_id"] or new_run_id()
            key = f"{record['label']}|seed {record['seed']}"
            jobs[key], by_key[key] = self.job(key, record["run_id"], run_config, study.state["base_run_id"]), record
        study.save()

        def running(key: str) -> None:
            by_key[key]["state"] = "running"

        def done(key: str, outcome: dict[str, Any]) -> None:
            _finish(study, by_key[key], outcome)

        def failed(key: str, error: str) -> None:
            by_key[key]["state"], by_key[key]["error"] = "failed", error

        initial = sum(r["state"] == "done" for r in study.runs)
        self.dispatch(jobs, "runs", len(study.runs), initial, running, done, failed)

    def run_sweeps(self, items: list[tuple[str, Any, str]]) -> None:
        """The learning-rate sweep's runs (``(key, run config, run id)``, from ``harness.experiments.study.budget``), side by side;
        their base evaluation on the validation split is the coordinator's, first."""
        from harness.experiments.pipeline import evaluate_base_model, prepare_pairs

        if not items:
            return
        jobs, bases = {}, {}
        for key, run_config, run_id in items:
            prepare_pairs(run_config)
            # every sweep run is scored on the same validation items: one base evaluation for all of them
            where = (run_config.model, run_config.eval_split, run_config.eval_limit, run_config.tasks)
            bases[where] = bases.get(where) or evaluate_base_model(run_config)
            jobs[key] = self.job(key, run_id, run_config, bases[where])
        self.dispatch(jobs, "sweep runs", len(jobs), 0, lambda key: None, lambda key, outcome: None,
                      lambda key, error: None)

    def dispatch(self, jobs: dict[str, Job], what: str, total: int, initial: int, on_running, on_done,
                 on_failed) -> None:
        """Run ``jobs`` at most ``--max-parallel`` at a time; each finished one ingested into the store as it
        arrives, each failed one submitted again up to ``retries`` times, then reported with its log's tail."""
        from tqdm.auto import tqdm

        from harness.experiments.study import worker
        from harness.experiments.study.progress import show_postfix

        study, spec, options = self.study, self.spec, self.spec.options
        queue: deque[str] = deque()
        for key, job in jobs.items():  # a folder a worker completed is ingested, never run again
            folder = _run_folder(job.run_id)
            if worker.complete(folder, job.run_id):
                on_done(key, worker.ingest(self.store, folder))
                initial += 1
            else:
                queue.append(key)
        study.save()
        running: dict[Any, str] = {}
        tries: dict[str, int] = dict.fromkeys(jobs, 0)
        failed: dict[str, str] = {}
        limit = self.spec.max_parallel or len(jobs) or 1
        bar = tqdm(total=total, initial=initial, desc=f"study {study.study_id} {what} ({spec.name})", unit="run",
                   disable=not self.progress)

        def show() -> None:
            show_postfix(bar, f"queued {len(queue)}, running {len(running)}, done {bar.n}, failed {len(failed)}")

        try:
            while queue or running:
                while queue and len(running) < limit:
                    key = queue.popleft()
                    tries[key] += 1
                    on_running(key)
                    running[self.executor.submit(jobs[key])] = key
                    log.info("study %s: %s submitted (run %s, try %d)", study.study_id, key, jobs[key].run_id,
                             tries[key])
                study.save()
                show()
                for handle in self.executor.wait(list(running), options["poll_s"]):
                    key = running.pop(handle)
                    try:
                        self.executor.result(handle)  # the run folder is the outcome; this raises a failure
                    except RunFailed as exc:
                        if tries[key] <= options["retries"]:
                            log.warning("study %s: %s failed (%s); trying again (%d of %d retries)", study.study_id,
                                        key, exc, tries[key], options["retries"])
                            queue.append(key)
                        else:
                            failed[key] = str(exc)
                            on_failed(key, str(exc))
                            log.error("study %s: %s failed after %d tries: %s\n--- last lines of its log ---\n%s",
                                      study.study_id, key, tries[key], exc, worker.log_tail(jobs[key].log_path))
                        continue
                    on_done(key, worker.ingest(self.store, _run_folder(jobs[key].run_id)))
                    bar.update(1)
                    log.info("study %s: %s done", study.study_id, key)
                study.save()
        except BaseException:
            if running:
                self.executor.cancel(list(running))  # each resumes under its own run id when the study is rerun
            study.save()
            raise
        finally:
            show()
            bar.close()
        if failed:
            names = "; ".join(f"{k} ({v})" for k, v in failed.items())
            raise HarnessError(f"study {study.study_id}: {len(failed)} run(s) failed after {options['retries'] + 1} "
                               f"tries: {names}; the last lines of their logs are above (studies/{study.study_id}/"
                               f"logs/); rerun with --study-id {study.study_id} to retry them")


def adopt_finished(study: Study, store_path: str | None) -> int:
    """Ingest the study's unfinished runs whose folders a worker completed (a coordinator stopped before it
    ingested them, or a study moved between executors); returns how many. None is trained again."""
    from harness.experiments.study.worker import complete, ingest
    from harness.results.store import ResultsStore

    adopted, store = 0, None
    for record in study.runs:
        if record["state"] == "done" or not record.get("run_id"):
            continue
        folder = _run_folder(record["run_id"])
        if complete(folder, record["run_id"]):
            store = store or ResultsStore(store_path)
            _finish(study, record, ingest(store, folder))
            adopted += 1
    if adopted:
        study.save()
        log.info("study %s: %d run(s) finished by workers ingested", study.study_id, adopted)
    return adopted


def _finish(study: Study, record: dict[str, Any], outcome: dict[str, Any]) -> None:
    if outcome.get("base_run_id") != study.state["base_run_id"]:
        raise HarnessError(f"study {study.study_id}: run {record['run_id']} was compared with base run "
                           f"{outcome.get('base_run_id')}, not the study's {study.state['base_run_id']}")
    record["state"] = "done"
    record.pop("error", None)
    record["pairs"] = outcome["pairs"]


def _run_folder(run_id: str):
    from harness.core.paths import run_dir

    return run_dir(run_id)
