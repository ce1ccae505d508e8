"""A study's training budget and learning rates, fixed before any compared run trains.

Equal budgets (``StudyConfig.budget``):

- ``steps`` (default): every run of the study trains the same number of optimizer steps ``N``. Unless
  ``--steps`` gives it, ``N`` is one pass over the study's largest pair set: every run's pairs are built
  first (``harness.experiments.pipeline.prepare_pairs``; the runs reuse them) and ``N = max ceil(pairs / (batch x
  grad_accum))`` over every (method entry, seed). A method with fewer pairs sees them more than once; none
  gets more gradient steps than another (``--max-steps`` given to the study is read as ``--steps``). ``N`` is
  fixed the first time it is planned and kept on resume.
- ``epochs``: each run trains ``--epochs`` passes over its own pairs (methods with more pairs train longer).
- ``paper``: the MMedPO paper's regime, 3 epochs with 3% warm-up and a cosine schedule, over each run's pairs.

Learning rates (``StudyConfig.lr_rule``):

- ``sweep`` (default): for each method entry, the rates ``g x --lr`` for ``g`` in ``lr_grid`` are each
  trained once (the study's first training seed and its pair draw, the study's budget) and scored on the
  validation split (``val_split``, ``val_limit`` items per task), which neither the pairs nor the test set
  use. The score is the same for every method: the mean over the study's tasks of each task's first
  headline metric (synth_vqa: closed_accuracy, synth_report: finding_f1; signed so that higher is better).
  The best rate wins (a tie goes to the smaller rate) and every run of that entry uses it. No method's
  rate is tuned on another's runs or on the test set.
- ``fixed``: ``--lr`` for every entry.

Everything chosen is written to ``study.json`` (``budget``, ``pair_counts``, ``lr``), with the sweep's run ids
and scores, so a reader sees what each method was given.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import TYPE_CHECKING, Any

from harness.core.errors import HarnessError

if TYPE_CHECKING:
    from harness.experiments.study.runner import MethodEntry, Study, StudyConfig

log = logging.getLogger(__name__)


def check_validation(config: StudyConfig) -> None:
    """A sweep needs a validation split in every task: a one-line error before any model loads."""
    from harness.tasks import get_task

    if config.lr_rule != "sweep" or all(e.is_base for e in config.methods):
        return
    for name in config.run.tasks:
        task = get_task(name)
        if config.val_split not in task.splits:
            raise HarnessError(f"--lr-rule sweep scores rates on the '{config.val_split}' split, which task '{name}' "
                               f"lacks (splits: {', '.join(task.splits)}); pass --lr-rule fixed with --lr, or "
                               f"--val-split one of its splits that neither pairs nor test use")
        if config.val_split in (config.run.eval_split, "train"):
            raise HarnessError(f"--val-split {config.val_split}: a learning rate must be chosen on items that "
                               "neither the pairs nor the evaluation use")


def plan(study: Study, config: StudyConfig, entries: dict[str, MethodEntry], run_sweeps=None) -> dict:
    """Fix the study's step budget and each entry's learning rate (see the module docstring); returns
    ``{"steps": N or None, "lr": {label: rate}}`` and records both in the study's state. ``run_sweeps``: runs
    every entry's sweep runs at once (``[(key, run config, run id)]``, a Ray or Slurm study's coordinator);
    without it each rate is trained here in turn."""
    trained = [e for e in entries.values() if not e.is_base]
    steps = _plan_steps(study, config, trained) if config.budget == "steps" and trained else None
    if run_sweeps is not None and config.lr_rule == "sweep":
        run_sweeps(_pending_sweeps(study, config, trained, steps))
    rates = {}
    for entry in trained:
        rates[entry.label] = _choose_rate(study, config, entry, steps)
    return {"steps": steps, "lr": rates}


def _plan_steps(study: Study, config: StudyConfig, trained: list[MethodEntry]) -> int:
    from harness.experiments.pipeline import prepare_pairs

    saved = study.state.get("budget") or {}
    counts = study.state.setdefault("pair_counts", {})
    for entry in trained:
        for seed in study.state["seeds"]:
            key = f"{entry.label}|seed {seed}"
            if key not in counts:
                _, counts[key] = prepare_pairs(config.run_config(entry, seed))
                study.save()
    per_step = config.run.train.batch_size * config.run.train.grad_accum
    needed = {key: math.ceil(n / per_step) for key, n in counts.items()}
    largest = max(needed, key=needed.get)
    if saved.get("steps"):
        steps = int(saved["steps"])
        if config.steps is None and needed[largest] > steps:
            log.warning("study %s: %s now has %d pairs, more than the %d steps fixed earlier cover once; the budget "
                        "stays %d steps so every run trains alike", study.study_id, largest, counts[largest], steps,
                        steps)
    else:
        steps = int(config.steps or config.run.train.max_steps or needed[largest])
    given = "--steps" if config.steps else "--max-steps" if config.run.train.max_steps else None
    study.state["budget"] = {"mode": "steps", "steps": steps, "per_step_pairs": per_step,
                             "from": given or f"{largest}: {counts[largest]} pairs"}
    study.save()
    log.info("study %s: every run trains %d optimizer steps (%s)", study.study_id, steps, study.state["budget"]["from"])
    return steps


def selection_score(store: Any, run_id: str, tasks: list[str]) -> float:
    """The mean over ``tasks`` of each task's first headline metric in run ``run_id`` (signed: higher is better)."""
    from harness.results.compare import headline_metrics
    from harness.tasks import get_task

    rows = {(r["task"], r["metric"]): r for r in store.results(run_ids=[run_id], tasks=list(tasks))}
    values = []
    for task in tasks:
        metric = headline_metrics(get_task(task))[0]
        row = rows.get((task, metric))
        if row is None or row["value"] is None:
            raise HarnessError(f"learning-rate sweep: run {run_id} has no {task}/{metric} to score")
        values.append(float(row["value"]) if row.get("higher_is_better", True) else -float(row["value"]))
    return sum(values) / len(values)


def selection_metrics(tasks: list[str]) -> list[str]:
    from harness.results.compare import headline_metrics
    from harness.tasks import get_task

    return [f"{t}/{headline_metrics(get_task(t))[0]}" for t in tasks]


def _sweep_record(config: StudyConfig, chosen: dict, entry: MethodEntry) -> dict:
    return chosen.setdefault(entry.label, {"rule": "sweep", "grid": list(config.lr_grid), "tried": {},
                                           "score": selection_metrics(list(config.run.tasks)),
                                           "split": config.val_split, "limit": config.val_limit})


def _sweep_config(study: Study, config: StudyConfig, entry: MethodEntry, steps: int | None, rate: float):
    """A sweep run: the study's first training seed and its pair draw, scored on the validation split."""
    return dataclasses.replace(config.run_config(entry, study.state["seeds"][0], steps=steps, lr=rate),
                               eval_split=config.val_split, eval_limit=config.val_limit)


def _pending_sweeps(study: Study, config: StudyConfig, trained: list[MethodEntry], steps: int | None) -> list:
    """The sweep runs not scored yet, each with its run id (fixed and saved now, so a rerun resumes it)."""
    from harness.results.store import new_run_id

    chosen = study.state.setdefault("lr", {})
    pending = []
    for entry in trained:
        if entry.label in chosen and "rate" in chosen[entry.label]:
            continue
        record = _sweep_record(config, chosen, entry)
        for factor in sorted(config.lr_grid):
            rate = float(config.run.train.lr) * factor
            key = f"{rate:.3g}"
            tried = record["tried"].setdefault(key, {"rate": rate, "run_id": None, "score": None})
            if tried["score"] is None:
                tried["run_id"] = tried["run_id"] or new_run_id()
                pending.append((f"{entry.label}|lr {key}", _sweep_config(study, config, entry, steps, rate),
                                tried["run_id"]))
    study.save()
    return pending


def _choose_rate(study: Study, config: StudyConfig, entry: MethodEntry, steps: int | None) -> float:
    from harness.experiments.pipeline import run
    from harness.results.store import ResultsStore, new_run_id

    chosen = study.state.setdefault("lr", {})
    if entry.label in chosen and "rate" in chosen[entry.label]:
        return float(chosen[entry.label]["rate"])
    base_lr = float(config.run.train.lr)
    if config.lr_rule == "fixed":
        chosen[entry.label] = {"rule": "fixed", "rate": base_lr}
        study.save()
        return base_lr
    record = _sweep_record(config, chosen, entry)
    store = ResultsStore(config.run.store)
    for factor in sorted(config.lr_grid):
        rate = base_lr * factor
        key = f"{rate:.3g}"
        tried = record["tried"].setdefault(key, {"rate": rate, "run_id": None, "score": None})
        if tried["score"] is not None:
            continue
        tried["run_id"] = tried["run_id"] or new_run_id()
        study.save()
        sweep = _sweep_config(study, config, entry, steps, rate)
        try:
            if not store.runs(run_ids=[tried["run_id"]]):  # stored already: a Ray or Slurm worker ran it
                log.info("study %s: %s at lr %s (validation run %s)", study.study_id, entry.label, key,
                         tried["run_id"])
                run(sweep, run_id=tried["run_id"])
        except HarnessError as exc:
            raise HarnessError(f"study {study.study_id}: the learning-rate sweep of {entry.label} at {key} failed: "
                               f"{exc} (rerun with --study-id {study.study_id} to resume)") from None
        tried["score"] = selection_score(store, tried["run_id"], list(config.run.tasks))
        study.save()
    best = max(record["tried"].values(), key=lambda t: (t["score"], -t["rate"]))
    record["rate"] = float(best["rate"])
    study.save()
    log.info("study %s: %s trains at lr %.3g (validation scores: %s)", study.study_id, entry.label, record["rate"],
             ", ".join(f"{k} {v['score']:.4f}" for k, v in record["tried"].items()))
    return record["rate"]
