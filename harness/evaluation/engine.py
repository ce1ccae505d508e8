"""The evaluation engine: batched greedy generation, resumable per-sample predictions, scored metrics.

``evaluate(model, tasks)`` runs, for each task, one generation pass over the split (and a second pass
with ablated images when asked), saves every answer as JSON Lines under the run directory
(``$HARNESS_HOME/runs/<run_id>/predictions/``), scores the task's metrics on the samples of their answer
type with bootstrap 95% intervals, and stores one results row per task and metric.

Prompts are the task's templates (``Task.prompt``), the same for every model. Decoding is greedy (or
seeded sampling with ``EvalConfig.do_sample``, for repeated evaluations of one model); the
token budget depends on the answer type (short for yes/no, longer for reports), so batches are formed
within one answer type. Under ``accelerate launch`` each process answers a strided share and the main
process merges and scores.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core.errors import HarnessError
from harness.evaluation import predictions as preds
from harness.evaluation.ablation import ablate_image
from harness.evaluation.config import EvalConfig
from harness.evaluation.distributed import ProcessGroup, current_process, held_by_main
from harness.metrics import MetricResult, get_metric
from harness.models.base import GenerationConfig, VisionLanguageModel
from harness.results.store import ResultRow, ResultsStore, RunRecord, new_run_id
from harness.tasks import Task, get_task
from harness.tasks.base import ANSWER_TYPES

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("id", "image", "question", "answer", "answer_type")
NON_METADATA_COLUMNS = {*REQUIRED_COLUMNS, "mask", "boxes"}


@dataclass
class TaskResult:
    """One task's predictions and metrics, and the same under the image ablation when one was run."""

    task: str
    version: str
    predictions: list[dict[str, Any]]
    metrics: dict[str, MetricResult]
    ablation: str | None = None
    ablated_predictions: list[dict[str, Any]] = field(default_factory=list)
    ablated_metrics: dict[str, MetricResult] = field(default_factory=dict)

    def drop(self, metric: str) -> float | None:
        """How much worse the metric is under the ablation (positive: the model relied on the image)."""
        if metric not in self.metrics or metric not in self.ablated_metrics:
            return None
        full, ablated = self.metrics[metric], self.ablated_metrics[metric]
        return full.value - ablated.value if full.higher_is_better else ablated.value - full.value


@dataclass
class EvalResult:
    run_id: str
    run_dir: Path
    model: dict[str, Any]
    config: EvalConfig
    tasks: dict[str, TaskResult]
    is_main: bool = True
    stored_in: Path | None = None

    def result_rows(self) -> list[ResultRow]:
        """Rows for the results store; ablated metrics are named ``<metric>@<ablation>`` in the same run."""
        rows = []
        for result in self.tasks.values():
            for suffix, metrics in (("", result.metrics), (f"@{result.ablation}", result.ablated_metrics)):
                for name, m in metrics.items():
                    rows.append(ResultRow(task=result.task, metric=name + suffix, value=m.value, ci_low=m.ci_low,
                                          ci_high=m.ci_high, n=m.n, higher_is_better=m.higher_is_better,
                                          task_version=result.version))
        return rows

    def summary(self) -> list[dict[str, Any]]:
        """Display rows: values and intervals times the metric's ``display_scale``, and the ablation drop."""
        rows = []
        for result in self.tasks.values():
            for name, m in result.metrics.items():
                scale = _display_scale(name)
                row: dict[str, Any] = {
                    "task": result.task, "metric": name, "value": round(m.value * scale, 2),
                    "95% CI": f"[{m.ci_low * scale:.2f}, {m.ci_high * scale:.2f}]" if m.ci_low == m.ci_low else "n/a",
                    "n": m.n,
                }
                if result.ablation:
                    ablated = result.ablated_metrics.get(name)
                    drop = result.drop(name)
                    row[result.ablation] = None if ablated is None else round(ablated.value * scale, 2)
                    row["drop"] = None if drop is None else round(drop * scale, 2)
                rows.append(row)
        return rows


def evaluate(
    model: VisionLanguageModel,
    tasks: Sequence[str],
    *,
    split: str = "test",
    limit: int | None = None,
    batch_size: int = 16,
    data_dir: str | Path | None = None,
    image_ablation: str | None = None,
    output_dir: str | Path | None = None,
    store: ResultsStore | str | Path | bool | None = None,
    seed: int = 0,
    run_id: str | None = None,
    run_config: dict[str, Any] | None = None,
    config: EvalConfig | None = None,
    process: ProcessGroup | None = None,
    progress: bool = True,
    task_data: dict[str, _TaskData] | None = None,
) -> EvalResult:
    """Evaluate ``model`` on ``tasks``; rerunning with the same ``run_id`` resumes where it stopped.

    ``task_data``: the splits already loaded and checked by ``load_task_data`` (the CLI checks the data
    before it loads the model). A failed evaluation that saved no prediction removes the run folder it
    created; one that saved some keeps them, to resume with the same ``run_id``. A run folder of its own
    (no ``output_dir``) is held by one launch at a time (``harness.core.paths.run_lock``, taken by the main process).

    ``store``: a ``ResultsStore`` or its path; None uses the default store under ``HARNESS_HOME``; False
    stores nothing. ``run_config`` is extra context recorded with the run (the model spec, method,
    base model...). ``config`` overrides the keyword options wholesale. ``process`` defaults to the
    ``accelerate`` process group.
    """

    config = config or EvalConfig(split=split, limit=limit, batch_size=batch_size,
                                  image_ablation=image_ablation, seed=seed)
    if not tasks:
        raise HarnessError("no tasks to evaluate")
    process = process or current_process()
    task_objects = [get_task(name) for name in tasks]  # unknown names fail before any work
    for task in task_objects:
        for metric in task.metrics:
            get_metric(metric)
    from harness.core.paths import check_run_id, run_lock

    run_id = process.broadcast(check_run_id(run_id) or new_run_id())
    run_dir = Path(output_dir) if output_dir is not None else _runs_dir() / run_id
    # the run folder is this evaluation's own unless the caller chose it (harness run's eval/ folder)
    with held_by_main(process, lambda: run_lock(run_id)) if output_dir is None else nullcontext():
        if output_dir is None and (run_dir / "pipeline.json").exists():
            raise HarnessError(f"--run-id {run_id} is a harness run, not an evaluation: resume it with harness "
                               "run --run-id, or pick another id")
        task_data = task_data if task_data is not None else load_task_data(task_objects, config, data_dir)
        created = not run_dir.exists()
        try:
            return _evaluate(model, task_objects, tasks, task_data, config, run_id, run_dir, store, run_config,
                             process, progress)
        except BaseException:
            if process.is_main:
                _clean_failed(run_dir, run_id, created)
            raise


def load_task_data(tasks: Sequence[Task | str], config: EvalConfig, data_dir: str | Path | None = None
                   ) -> dict[str, _TaskData]:
    """Every task's split loaded and checked (columns, answer types, unique ids): one-line errors, cheap
    enough to run before a model loads."""
    loaded = {}
    for task in tasks:
        task = get_task(task) if isinstance(task, str) else task
        loaded[task.name] = _TaskData.load(task, config.split, data_dir, config.limit)
    return loaded


def _clean_failed(run_dir: Path, run_id: str, created: bool) -> None:
    """Remove the folder of a failed run that saved no prediction; else say how to resume it."""
    pred_dir = run_dir / "predictions"
    saved = sum(1 for part in pred_dir.glob("*.part-*.jsonl") for line in part.open(encoding="utf-8")
                if line.strip()) if pred_dir.is_dir() else 0
    if created and not saved:
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)
    elif saved:
        log.warning("run %s failed with %d predictions saved: fix the cause and resume with --run-id %s",
                    run_id, saved, run_id)


def _evaluate(model: VisionLanguageModel, task_objects: list[Task], tasks: Sequence[str],
              task_data: dict[str, _TaskData], config: EvalConfig, run_id: str, run_dir: Path, store: Any,
              run_config: dict[str, Any] | None, process: ProcessGroup, progress: bool) -> EvalResult:
    from harness.core.provenance import set_seed

    pred_dir = run_dir / "predictions"
    pred_dir.mkdir(parents=True, exist_ok=True)
    provenance = {task.name: task_data[task.name].record for task in task_objects}
    if process.is_main:
        _check_or_write_manifest(run_dir, run_id, model, list(tasks), config, run_config or {}, provenance)
    set_seed(config.seed)

    results: dict[str, TaskResult] = {}
    for task in task_objects:
        data = task_data[task.name]
        records = _run_pass(model, data, task.name, None, config, pred_dir, process, progress)
        ablated = []
        if config.image_ablation:
            name = f"{task.name}@{config.image_ablation}"
            ablated = _run_pass(model, data, name, config.image_ablation, config, pred_dir, process, progress)
        if not process.is_main:
            continue
        results[task.name] = TaskResult(
            task=task.name, version=task.version, predictions=records,
            metrics=score(task, records, seed=config.seed, n_boot=config.n_boot),
            ablation=config.image_ablation, ablated_predictions=ablated,
            ablated_metrics=score(task, ablated, seed=config.seed, n_boot=config.n_boot) if ablated else {},
        )
    result = EvalResult(run_id, run_dir, model.describe(), config, results, is_main=process.is_main)
    if process.is_main:
        _write_results_json(result)
        if store is not False:
            result.stored_in = _store(result, store, model, {**(run_config or {}), "data": provenance})
    process.barrier()
    return result


def score(task: Task, records: Sequence[dict[str, Any]], *, seed: int = 0, n_boot: int = 1000) -> dict[str, MetricResult]:
    """Each of the task's metrics over the records of its answer type (metrics with no samples are skipped).

    Metrics over the same subset are scored in one ``compute_metrics`` call, so report metrics share one
    tokenization and one METEOR JVM.
    """
    from harness.metrics import compute_metrics

    groups: dict[str | None, list[str]] = {}
    for name in task.metrics:
        groups.setdefault(get_metric(name).subset, []).append(name)
    scores: dict[str, MetricResult] = {}
    for subset, names in groups.items():
        chosen = [r for r in records if subset is None or r["answer_type"] == subset]
        if not chosen:
            log.info("%s: no '%s' samples, metrics %s skipped", task.name, subset, ", ".join(names))
            continue
        scores.update(compute_metrics(names, [r["prediction"] for r in chosen], [r["reference"] for r in chosen],
                                      seed=seed, n_boot=n_boot))
    return {name: scores[name] for name in task.metrics if name in scores}


@dataclass
class _TaskData:
    """A task's split: text columns as plain rows (cheap), images kept lazy until their batch runs."""

    task: Task
    rows: list[dict[str, Any]]
    images: datasets.Dataset
    metadata_columns: list[str]
    record: dict[str, Any] = field(default_factory=dict)  # what data this is (harness.tasks.identity)

    @classmethod
    def load(cls, task: Task, split: str, data_dir: str | Path | None, limit: int | None) -> _TaskData:
        from harness.tasks.identity import split_record

        dataset = task.load(split, data_dir=data_dir)
        missing = [c for c in REQUIRED_COLUMNS if c not in dataset.column_names]
        if missing:
            raise HarnessError(f"task '{task.name}' split '{split}' lacks the column(s) {', '.join(missing)}")
        n_split = len(dataset)
        if limit is not None:
            dataset = dataset.select(range(min(limit, len(dataset))))
        text_columns = [c for c in dataset.column_names if c not in ("image", "mask")]
        rows = dataset.select_columns(text_columns).to_list()
        seen: set[str] = set()
        for row in rows:
            if row["answer_type"] not in ANSWER_TYPES:
                raise HarnessError(f"task '{task.name}', item {row['id']}: answer_type '{row['answer_type']}' "
                                   f"is not one of {', '.join(ANSWER_TYPES)}")
            if str(row["id"]) in seen:
                raise HarnessError(f"task '{task.name}' split '{split}': id {row['id']} appears twice")
            seen.add(str(row["id"]))
        metadata = [c for c in text_columns if c not in NON_METADATA_COLUMNS]
        record = split_record(task, split, rows, n_split=n_split, limit=limit, data_dir=data_dir)
        return cls(task, rows, dataset.select_columns(["image"]), metadata, record)

    def image(self, index: int, where: str = ""):
        """The decoded image of row ``index``, high-bit-depth grayscale scaled to 8 bits (``harness.core.images``);
        an unreadable or oversized file is a one-line error naming it and the item."""
        from harness.core.errors import DataError
        from harness.core.images import ImageTooLarge, decoded

        try:
            return decoded(lambda: self.images[index]["image"])
        except (ImageTooLarge, OSError, ValueError, SyntaxError) as exc:  # UnidentifiedImageError is an OSError
            import datasets

            raw = self.images.cast_column("image", datasets.Image(decode=False))[index]["image"] or {}
            source = raw.get("path") or f"task '{self.task.name}'"
            problem = str(exc) if isinstance(exc, ImageTooLarge) else \
                f"image cannot be decoded ({' '.join(str(exc).split())[:120]})"
            raise DataError(source, problem, record=self.rows[index]["id"], field="image") from None


def _batches(data: _TaskData, indices: Sequence[int], batch_size: int) -> list[tuple[str, list[int]]]:
    """Batches of one answer type each (one token budget per generate call), similar prompt lengths together."""
    batches = []
    for kind in ANSWER_TYPES:
        chosen = [i for i in indices if data.rows[i]["answer_type"] == kind]
        chosen.sort(key=lambda i: len(data.rows[i]["question"]))
        batches += [(kind, chosen[s:s + batch_size]) for s in range(0, len(chosen), batch_size)]
    return batches


def _run_pass(model: VisionLanguageModel, data: _TaskData, pass_name: str, ablation: str | None,
              config: EvalConfig, pred_dir: Path, process: ProcessGroup, progress: bool) -> list[dict[str, Any]]:
    """Answer every sample not yet in the pass's part files; on the main process return all, merged."""
    from tqdm.auto import tqdm

    done = preds.read_parts(pred_dir, pass_name)
    process.barrier()  # every process must see the same finished set before anyone appends
    todo = [i for i, row in enumerate(data.rows) if str(row["id"]) not in done]
    mine = preds.shard(todo, process.rank, process.world_size)
    if done and process.is_main:
        log.info("%s: resuming, %d of %d predictions already saved", pass_name, len(data.rows) - len(todo),
                 len(data.rows))
    part = preds.part_path(pred_dir, pass_name, process.rank)
    with tqdm(total=len(mine), desc=pass_name, unit="sample", disable=not (progress and process.is_main)) as bar:
        for kind, batch in _batches(data, mine, config.batch_size):
            rows = [data.rows[i] for i in batch]
            images = [data.image(i, pass_name) for i in batch]
            if ablation:
                images = [ablate_image(img, ablation, sample_id=row["id"], seed=config.seed,
                                       noise_step=config.noise_step, blank_value=config.blank_value)
                          for img, row in zip(images, rows)]
            prompts = [data.task.prompt(row) for row in rows]
            outputs = model.generate(images, prompts, _generation_config(config, kind, pass_name, rows))
            if len(outputs) != len(rows) or not all(isinstance(o, str) for o in outputs):
                raise HarnessError(f"model '{model.name}' returned {len(outputs)} answers for {len(rows)} prompts")
            preds.append_batch(part, [preds.make_record(r, o, data.metadata_columns) for r, o in zip(rows, outputs)])
            bar.update(len(batch))
    process.barrier()  # all shares written before the main process merges
    if not process.is_main:
        return []
    return preds.merge(pred_dir, pass_name, [str(row["id"]) for row in data.rows])


def _generation_config(config: EvalConfig, kind: str, pass_name: str, rows: list[dict[str, Any]]) -> GenerationConfig:
    """Greedy by default; when sampling, each batch is seeded from the run seed and its items, so a rerun
    or a resumed run draws the same answers and two seeds give two independent draws."""
    if not config.do_sample:
        return GenerationConfig(max_new_tokens=config.max_new_tokens(kind))
    import zlib

    key = "\x1f".join([str(config.seed), pass_name, *(str(row["id"]) for row in rows)])
    return GenerationConfig(max_new_tokens=config.max_new_tokens(kind), do_sample=True,
                            temperature=config.temperature, seed=zlib.crc32(key.encode("utf-8")))


def _runs_dir() -> Path:
    from harness.core.paths import runs_dir

    return runs_dir()


def _check_or_write_manifest(run_dir: Path, run_id: str, model: VisionLanguageModel, tasks: list[str],
                             config: EvalConfig, run_config: dict[str, Any], data: dict[str, Any]) -> None:
    """Record what the run is: the model (with its weights' fingerprint), the data of every task
    (``harness.tasks.identity``), the code, package versions and seeds, so the folder alone reproduces the
    run. A resumed run must use the same model, split and data as the saved predictions."""
    from harness.core.io import read_json, write_json
    from harness.core.provenance import provenance

    manifest = run_dir / "run.json"
    identity = model.describe()
    if manifest.exists():
        saved = read_json(manifest)
        saved_model = saved.get("model", {})
        if saved_model.get("name") != identity.get("name") or (
                saved_model.get("fingerprint") and saved_model.get("fingerprint") != identity.get("fingerprint")):
            raise HarnessError(f"run '{run_id}' holds predictions of model '{saved_model.get('name')}' "
                               f"(weights {saved_model.get('fingerprint') or 'unrecorded'}), not "
                               f"'{identity.get('name')}' (weights {identity.get('fingerprint') or 'unrecorded'}): "
                               "resume with the same model or start a new run")
        if saved.get("config", {}).get("split") != config.split:
            raise HarnessError(f"run '{run_id}' evaluated split '{saved['config'].get('split')}', not '{config.split}'")
        for name, record in data.items():
            before = (saved.get("data") or {}).get(name) or {}
            if before.get("version") not in (None, record["version"]):  # other prompts or scoring
                raise HarnessError(f"run '{run_id}' evaluated '{name}' version {before['version']}, not "
                                   f"{record['version']}: its saved answers were asked or scored otherwise; "
                                   "start a new run")
            if before.get("content_sha256") not in (None, record["content_sha256"]):
                raise HarnessError(f"run '{run_id}' evaluated other '{name}' data ({before.get('n')} items, content "
                                   f"{before['content_sha256'][:12]}) than now ({record['n']} items, content "
                                   f"{record['content_sha256'][:12]}): evaluate the same data or start a new run")
        tasks = list(dict.fromkeys([*saved.get("tasks", []), *tasks]))
        data = {**(saved.get("data") or {}), **data}
    seeds = {"eval": config.seed, **{k: run_config[k] for k in ("train_seed", "pair_seed") if k in run_config}}
    write_json(manifest, {"run_id": run_id, "model": identity, "tasks": tasks, "config": config.to_dict(),
                          "data": data, "environment": {**provenance(config.seed), "seeds": seeds},
                          "run_config": run_config})


def _write_results_json(result: EvalResult) -> None:
    from harness.core.io import write_json

    payload = {
        "run_id": result.run_id,
        "model": result.model,
        "results": [vars(row) for row in result.result_rows()],
    }
    write_json(result.run_dir / "results.json", payload)


def _store(result: EvalResult, store: ResultsStore | str | Path | None, model: VisionLanguageModel,
           run_config: dict[str, Any]) -> Path:
    from harness.core.provenance import provenance

    if not isinstance(store, ResultsStore):
        store = ResultsStore(store)
    identity = model.describe()
    record = RunRecord(
        model=identity.get("name", model.name),
        base_model=run_config.get("base_model"),
        method=run_config.get("method"),
        model_type=identity.get("family"),
        config={**result.config.to_dict(), "tasks": list(result.tasks), "model": identity, **run_config},
        predictions_dir=str(result.run_dir),
        run_id=result.run_id,
        **provenance(result.config.seed),
    )
    store.add_run(record, result.result_rows(), replace=True)
    log.info("stored run %s in %s", result.run_id, store.path)
    return store.path


def _display_scale(metric: str) -> float:
    try:
        return get_metric(metric.split("@")[0]).display_scale
    except HarnessError:
        return 1.0
