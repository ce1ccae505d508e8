"""Running a study: every method entry x every training seed through ``harness.experiments.pipeline``, resumably.

The study's state lives in ``$HARNESS_HOME/studies/<study_id>/study.json`` (written atomically after
every change): its settings, the base evaluation's run id and one entry per (method entry, seed) with
its run id and state (``pending``, ``running``, ``done``, ``failed``). A run gets its id before it
starts, so an interrupted run is resumed by the pipeline under the same id; finished runs are skipped.

Pair draws: by default each training seed draws its own preference pairs (``pair_draw="per-seed"``: the run
with training seed s uses pair seed ``run.pair_seed + s``), so the seed variance a study measures includes
the variance of the pair draw; ``pair_draw="shared"`` gives every seed the study's one draw. The base
evaluation is shared by every run either way (the pipeline keys it by model, tasks, split and limit, never
by a seed); each draw of pairs is built once and cached (the pair cache is keyed by everything but the
training seed and the loss hyperparameters).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.io import read_json, write_json
from harness.experiments.pipeline import RunConfig, check_config, check_tasks, config_dict
from harness.experiments.study.progress import show_postfix

log = logging.getLogger(__name__)

BASE = "base"  # the method entry that means the base model itself (no training)
PAIR_DRAWS = ("per-seed", "shared")  # how the seeds of a method entry draw their preference pairs
# How much every run trains (harness.experiments.study.budget): "steps" (default) gives every run of the study the same
# number of optimizer steps, enough for the largest pair set to be seen once; "epochs" gives each run
# ``--epochs`` passes over its own pairs; "paper" is the MMedPO paper's regime (3 epochs, 3% warm-up).
BUDGETS = ("steps", "epochs", "paper")
PAPER_REGIME = {"epochs": 3.0, "warmup_ratio": 0.03, "schedule": "cosine"}
# How each method entry's learning rate is chosen: "sweep" (default) tries ``lr_grid`` x the run's --lr on the
# validation split and keeps the best by the study's selection score; "fixed" uses --lr for every entry.
LR_RULES = ("sweep", "fixed")
LR_GRID = (0.5, 1.0, 2.0, 4.0)
STATES = ("pending", "running", "done", "failed")
# settings that may differ between invocations of one study without changing its numbers
_MACHINE_SETTINGS = ("device", "store")


@dataclass(frozen=True)
class MethodEntry:
    """One row of a study: a registered method with options (``mmedpo[ablation=no-visual]``), or ``base``."""

    label: str
    method: str
    options: tuple[tuple[str, str], ...] = ()

    @property
    def is_base(self) -> bool:
        return self.method == BASE


_ENTRY = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\[(.*)\])?\s*$")


def parse_methods(text: str) -> list[MethodEntry]:
    """``"base,dpo,mmedpo[ablation=no-visual,noise=global]"`` -> entries; commas inside brackets separate
    options, and a piece without ``=`` continues the previous value (``judges=a,b``)."""
    entries, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth < 0 or depth > 1:
            raise HarnessError(f"--methods: unbalanced brackets in {text!r}")
        if char == "," and depth == 0:
            entries.append(current)
            current = ""
        else:
            current += char
    if depth:
        raise HarnessError(f"--methods: unbalanced brackets in {text!r}")
    entries.append(current)
    parsed = [_parse_entry(e) for e in entries if e.strip()]
    if not parsed:
        raise HarnessError("--methods names no method")
    labels = [e.label for e in parsed]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise HarnessError(f"--methods lists {', '.join(duplicates)} twice")
    return parsed


def _parse_entry(text: str) -> MethodEntry:
    match = _ENTRY.match(text)
    if not match:
        raise HarnessError(f"--methods: cannot read the entry {text.strip()!r} (expected NAME or NAME[KEY=VALUE,...])")
    name, inner = match.group(1), match.group(2)
    options: dict[str, str] = {}
    last = None
    for piece in (inner or "").split(","):
        key, sep, value = piece.partition("=")
        if sep and key.strip():
            last = key.strip()
            options[last] = value.strip()
        elif last is not None and piece.strip():
            options[last] += "," + piece.strip()
        elif piece.strip():
            raise HarnessError(f"--methods: option {piece.strip()!r} of '{name}' is not KEY=VALUE")
    if name == BASE and options:
        raise HarnessError("--methods: 'base' is the base model itself and takes no options")
    label = name if not options else f"{name}[{','.join(f'{k}={v}' for k, v in options.items())}]"
    return MethodEntry(label=label, method=name, options=tuple(options.items()))


@dataclass
class StudyConfig:
    """A study: method entries x training seeds on one base model and tasks, with shared run settings."""

    methods: list[MethodEntry]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    reference: str | None = None  # None: the methods' declared default (harness.methods.default_reference)
    run: RunConfig = field(default_factory=RunConfig)  # method, options, train.seed (and pair_seed) set per run
    pair_draw: str = "per-seed"  # "per-seed": pair seed run.pair_seed + training seed; "shared": run.pair_seed
    budget: str = "steps"  # BUDGETS
    steps: int | None = None  # the steps of budget "steps"; None: one pass over the study's largest pair set
    lr_rule: str = "sweep"  # LR_RULES
    lr_grid: tuple[float, ...] = LR_GRID  # multiples of run.train.lr a sweep tries
    val_split: str = "val"  # where a sweep scores its rates (held out from pairs and test)
    val_limit: int | None = 300  # validation items per task a sweep scores

    def __post_init__(self) -> None:
        if isinstance(self.methods, str):
            self.methods = parse_methods(self.methods)
        if self.reference is None:
            from harness.methods import default_reference

            self.reference = default_reference()
        if not self.seeds:
            raise HarnessError("a study needs at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise HarnessError(f"seeds repeat: {self.seeds}")
        if self.pair_draw not in PAIR_DRAWS:
            raise HarnessError(f"--pair-draw must be one of {', '.join(PAIR_DRAWS)}, got '{self.pair_draw}'")
        if self.budget not in BUDGETS:
            raise HarnessError(f"--budget must be one of {', '.join(BUDGETS)}, got '{self.budget}'")
        if self.steps is not None and (self.budget != "steps" or self.steps < 1):
            raise HarnessError(f"--steps must be a positive number of steps and goes with --budget steps, got "
                               f"{self.steps} with --budget {self.budget}")
        if self.lr_rule not in LR_RULES:
            raise HarnessError(f"--lr-rule must be one of {', '.join(LR_RULES)}, got '{self.lr_rule}'")
        self.lr_grid = tuple(float(g) for g in self.lr_grid)
        if not self.lr_grid or any(not g > 0 for g in self.lr_grid) or len(set(self.lr_grid)) != len(self.lr_grid):
            raise HarnessError(f"--lr-grid needs distinct positive multiples of --lr, got {list(self.lr_grid)}")
        if self.val_limit is not None and self.val_limit < 1:
            raise HarnessError(f"--val-limit must be positive, got {self.val_limit}")

    def pair_seed(self, seed: int) -> int:
        """The pair seed of the run with training seed ``seed``."""
        return self.run.pair_seed + seed if self.pair_draw == "per-seed" else self.run.pair_seed

    def run_config(self, entry: MethodEntry, seed: int, *, steps: int | None = None,
                   lr: float | None = None) -> RunConfig:
        """The run of ``entry`` with training seed ``seed``: its pair seed, the budget (``steps`` for budget
        "steps", once planned; the paper's regime for "paper") and its learning rate (``lr``, once chosen)."""
        changes: dict[str, Any] = {"seed": seed}
        if self.budget == "paper":
            changes.update(PAPER_REGIME, max_steps=0)
        elif self.budget == "steps" and steps is not None:
            changes["max_steps"] = int(steps)
        if lr is not None:
            changes["lr"] = float(lr)
        train = dataclasses.replace(self.run.train, **changes)
        return dataclasses.replace(self.run, method=entry.method, options=dict(entry.options), train=train,
                                   pair_seed=self.pair_seed(seed))

    def settings(self) -> dict[str, Any]:
        """What every run of the study shares (compared when a study is resumed)."""
        data = config_dict(self.run)
        for name in ("method", "options", *_MACHINE_SETTINGS):
            data.pop(name, None)
        data["train"].pop("seed", None)
        data["pair_draw"] = self.pair_draw
        data["budget"] = {"mode": self.budget, "steps": self.steps}
        data["lr_rule"] = {"rule": self.lr_rule, "grid": list(self.lr_grid) if self.lr_rule == "sweep" else None,
                           "split": self.val_split, "limit": self.val_limit}
        return data


@dataclass
class Study:
    study_id: str
    folder: Path
    state: dict[str, Any]

    @property
    def path(self) -> Path:
        return self.folder / "study.json"

    def save(self) -> None:
        write_json(self.path, self.state)

    @property
    def runs(self) -> list[dict[str, Any]]:
        return self.state["runs"]

    def runs_of(self, label: str, *, done: bool = True) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["label"] == label and (r["state"] == "done" or not done)]


def studies_dir() -> Path:
    from harness.core.paths import harness_home

    return harness_home() / "studies"


def new_study_id() -> str:
    import uuid

    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def validate(config: StudyConfig) -> None:
    """Every method entry's name, options and the tasks (and their validation split when learning rates are
    swept), before any model loads."""
    from harness.experiments.study.budget import check_validation

    for entry in config.methods:
        if not entry.is_base:
            check_config(config.run_config(entry, config.seeds[0]))
    if not any(not e.is_base for e in config.methods):
        check_tasks(config.run)  # a study of the base model alone: its tasks are still checked
    check_validation(config)


def open_study(config: StudyConfig, study_id: str | None = None) -> Study:
    """The study folder: created, or reopened (same settings required) with any new (entry, seed) runs added."""
    study_id = study_id or new_study_id()
    folder = studies_dir() / study_id
    path = folder / "study.json"
    settings = config.settings()
    if path.exists():
        state = read_json(path)
        # studies from before per-seed draws shared one draw; before budgets, each run trained its own epochs at --lr
        saved = {"pair_draw": "shared", "budget": {"mode": "epochs", "steps": None},
                 "lr_rule": {"rule": "fixed", "grid": None, "split": config.val_split, "limit": config.val_limit},
                 **state.get("settings", {})}
        changed = sorted(k for k in {*saved, *settings} if saved.get(k) != settings.get(k))
        if changed:
            detail = "; ".join(f"{k}: {saved.get(k)!r} then, {settings.get(k)!r} now" for k in changed[:3])
            raise HarnessError(f"study '{study_id}' was run with other settings ({detail}): rerun it with the same "
                               "flags, or start a new study")
        log.info("resuming study %s", study_id)
    else:
        state = {"study_id": study_id, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "settings": settings, "base_run_id": None, "runs": []}
    state["methods"] = list(dict.fromkeys([*state.get("methods", []), *(e.label for e in config.methods)]))
    state["entries"] = {**state.get("entries", {}),
                        **{e.label: {"method": e.method, "options": dict(e.options)} for e in config.methods}}
    state["seeds"] = sorted({*state.get("seeds", []), *config.seeds})
    state["reference"] = config.reference
    state["store"] = config.run.store
    known = {(r["label"], r["seed"]) for r in state["runs"]}
    # seed-major order: an interrupted study has every method at its first seeds rather than some methods
    # at every seed and others at none
    for seed in config.seeds:
        for entry in config.methods:
            if entry.is_base:
                continue
            if (entry.label, seed) not in known:
                state["runs"].append({"label": entry.label, "method": entry.method, "options": dict(entry.options),
                                      "seed": seed, "pair_seed": config.pair_seed(seed), "run_id": None,
                                      "state": "pending"})
    study = Study(study_id, folder, state)
    study.save()
    return study


def run_study(config: StudyConfig, *, study_id: str | None = None, progress: bool = True,
              executor: Any = None) -> Study:
    """Run every pending or unfinished run of the study; finished ones are skipped. One process at a time
    per study (``harness.core.paths.study_lock``): two would overwrite each other's ``study.json``. ``executor``:
    a ``harness.experiments.study.executors.ExecutorSpec`` (None: local, one run after another in this process)."""
    from harness.core.paths import study_lock
    from harness.tasks.task_options import task_options

    study_id = study_id or new_study_id()
    if executor is not None:
        executor.check_installed()
    from harness.core.timing import clock
    from harness.experiments import trained_cache

    # a run that trains exactly what an earlier run of the study trained (the first seed's run is the sweep's
    # run at the chosen rate) copies its model
    with study_lock(study_id), task_options(config.run.task_options), trained_cache.reusing():
        with clock() as study_clock:
            study = _run_study(config, study_id, progress, executor)
        write_study_timings(study, study_clock)
        return study


def study_run_ids(study: Study) -> list[tuple[str, str]]:
    """``(label, run id)`` of every run the study started: the learning-rate sweep's, then the compared runs."""
    runs = []
    for label, chosen in (study.state.get("lr") or {}).items():
        for key, tried in (chosen.get("tried") or {}).items():
            if tried.get("run_id"):
                runs.append((f"{label} lr {key} (sweep)", tried["run_id"]))
    runs += [(f"{r['label']} seed {r['seed']}", r["run_id"]) for r in study.runs if r.get("run_id")]
    return runs


def write_study_timings(study: Study, study_clock) -> dict[str, Any]:
    """``timings.json`` beside ``study.json``: this invocation's time per stage (added to earlier invocations')
    and each run's (from ``runs/<id>/timings.json``, which a Ray or Slurm worker writes too). Metadata only."""
    from harness.core.paths import runs_dir
    from harness.core.timing import add

    path = study.folder / "timings.json"
    saved = read_json(path) if path.is_file() else {}
    runs = {}
    for label, run_id in study_run_ids(study):
        run_file = runs_dir() / run_id / "timings.json"
        if run_file.is_file():
            runs[run_id] = {"label": label, **read_json(run_file)["total"]}
    timings = {"total": add(saved.get("total"), study_clock.as_dict()),
               "invocations": [*saved.get("invocations", []), study_clock.as_dict()], "runs": runs}
    write_json(path, timings)
    return timings


def _run_study(config: StudyConfig, study_id: str, progress: bool, executor: Any = None) -> Study:
    from tqdm.auto import tqdm

    from harness.experiments.pipeline import evaluate_base_model, run
    from harness.experiments.study import budget
    from harness.results.store import new_run_id

    validate(config)
    study = open_study(config, study_id)
    entries = {e.label: e for e in config.methods}
    for record in study.runs:  # entries of an earlier invocation of this study
        entries.setdefault(record["label"], MethodEntry(record["label"], record["method"],
                                                        tuple(record["options"].items())))
    if not study.state.get("base_run_id"):
        study.state["base_run_id"] = evaluate_base_model(config.run)
        study.save()
    from harness.experiments.study.executors import Coordinator, adopt_finished

    if executor is not None and executor.name != "local":  # Ray or Slurm: this process coordinates
        coordinator = Coordinator(study, config, executor, progress=progress)
        try:
            planned = budget.plan(study, config, entries, run_sweeps=coordinator.run_sweeps)
            adopt_finished(study, config.run.store)
            coordinator.fan_out(entries, planned, [r for r in study.runs if r["state"] != "done"])
        finally:
            coordinator.close()
        return study
    from harness.training import refstore

    # the sweep's rates of one entry train on the same batches: their reference log-probs are computed once
    with refstore.sharing(study.folder / "reference-logps"):
        planned = budget.plan(study, config, entries)  # equal steps and each entry's learning rate, before any run
    adopt_finished(study, config.run.store)  # runs a Ray or Slurm worker finished but no coordinator ingested
    todo = [r for r in study.runs if r["state"] != "done"]
    done = len(study.runs) - len(todo)
    with tqdm(total=len(study.runs), initial=done, desc=f"study {study.study_id}", unit="run",
              disable=not progress) as bar:
        for record in todo:
            entry = entries[record["label"]]
            record["run_id"] = record["run_id"] or new_run_id()
            record["state"] = "running"
            study.save()
            show_postfix(bar, f"{record['label']} seed {record['seed']}")
            try:
                outcome = run(config.run_config(entry, record["seed"], steps=planned["steps"],
                                                lr=planned["lr"][entry.label]), run_id=record["run_id"])
            except HarnessError as exc:
                record["state"], record["error"] = "failed", str(exc)
                study.save()
                raise HarnessError(f"study {study.study_id}: {record['label']} seed {record['seed']} failed: {exc} "
                                   f"(rerun with --study-id {study.study_id} to resume)") from None
            record["state"] = "done"
            record.pop("error", None)
            record["pairs"] = outcome.pairs
            if outcome.base_run_id != study.state["base_run_id"]:
                raise HarnessError(f"study {study.study_id}: run {outcome.run_id} was compared with base run "
                                   f"{outcome.base_run_id}, not the study's {study.state['base_run_id']}")
            study.save()
            bar.update(1)
    return study


def load_study(study_id: str) -> Study:
    folder = studies_dir() / study_id
    if not (folder / "study.json").exists():
        known = sorted(p.parent.name for p in studies_dir().glob("*/study.json"))
        hint = f"; known: {', '.join(known[-5:])}" if known else ""
        raise HarnessError(f"no study '{study_id}' under {studies_dir()}{hint}")
    return Study(study_id, folder, read_json(folder / "study.json"))
