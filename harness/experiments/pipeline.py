"""``harness run``: base model -> the method's pairs -> training -> evaluation -> store -> comparison.

Each stage writes an artifact that the next stage reads, so an interrupted run resumes from the last
finished stage (``--run-id``). The run directory (``$HARNESS_HOME/runs/<run_id>/``) holds::

    pipeline.json         the run's config, with the method's citation and version
    train/                checkpoints and the trained model (resumed from the last checkpoint)
    eval/                 the trained model's predictions and metrics (resumed per batch)

The method's pairs live in a cache of their own, ``$HARNESS_HOME/pairs/<method>-<key>/`` (``pairs.jsonl``
and the builder's folders), keyed by everything pairs depend on (base model, method and its builder
options, tasks, training limit, data seed) and NOT by the training seed or the loss hyperparameters, so
runs of one method with several training seeds (``harness study``) or several betas share one build.

The base model's evaluation is a run of its own, reused by every later ``harness run`` with the same base
model, tasks, split, limit and data seed, so comparing methods costs one base evaluation.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.io import read_json, write_json
from harness.core.options import option_field
from harness.core.timing import clock, stage
from harness.curation.preferences import PreferencePair, read_pairs, write_pairs
from harness.curation.textpairs import (
    DEFAULT_TEXT_PAIRS,
    TEXT_PAIR_MODES,
    TEXT_PAIRS_VERSION,
    default_text_pairs,
    mix_summary,
)
from harness.models.fingerprint import model_fingerprint
from harness.training.config import TrainConfig

log = logging.getLogger(__name__)

DEFAULT_MODEL = "testbed"  # the embedded default of `harness run` and `harness study` (docs/testbed.md)
DEFAULT_TASKS = ("synth_vqa", "synth_report")
# Built-in models small enough for a CPU (built on first use through the model registry). The training
# defaults below were measured on them (docs/run.md); any other model trains with TrainConfig's defaults.
SMALL_MODELS = ("tiny", "testbed")
SMALL_MODEL_TRAIN_DEFAULTS: dict[str, Any] = {"lr": 1e-4, "batch_size": 8, "max_length": 512}
# Per model, on top of SMALL_MODEL_TRAIN_DEFAULTS. The testbed's rate is what the validation sweep of the
# acceptance study chose for DPO and MMedPO on testbed 2 at 250 steps (docs/testbed.md#study: 2.5e-5 of 2.5e-5,
# 5e-5 and 1e-4, on the val split); at 5e-5 one MMedPO run named more lesions but on the wrong side more often
# than chance (side right when named 0.39, `harness diagnose`).
MODEL_TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {"testbed": {"lr": 2.5e-5}}
# What every run changes from TrainConfig's defaults: checkpoints often enough that a killed run resumes.
RUN_TRAIN_DEFAULTS: dict[str, Any] = {"save_every": 20}


def default_train_config(model: str = DEFAULT_MODEL, **overrides: Any) -> TrainConfig:
    """The training options a run of ``model`` uses unless told otherwise (``overrides`` win)."""
    values = {**RUN_TRAIN_DEFAULTS, **(SMALL_MODEL_TRAIN_DEFAULTS if model in SMALL_MODELS else {}),
              **MODEL_TRAIN_DEFAULTS.get(model, {}), **overrides}
    return TrainConfig.from_dict(values)


@dataclass
class RunConfig:
    """Everything ``harness run`` does; each field is also a CLI flag, and so is each ``TrainConfig`` field.

    ``train`` is the shared core's ``TrainConfig``; None gives ``default_train_config(model)``.
    """

    method: str = option_field("", "preference method, required (harness methods lists them)")
    model: str = option_field(DEFAULT_MODEL, "base model: a built-in name (tiny, testbed), a model folder, llava:<folder>...")
    tasks: tuple[str, ...] = option_field(DEFAULT_TASKS, "tasks: pairs from their train split, evaluation on test")
    data_dir: str | None = option_field(None, "data root for the real datasets (default: $HARNESS_DATA)")
    train_limit: int | None = option_field(500, "training items per task used to build pairs (None: the whole split)")
    eval_limit: int | None = option_field(None, "test items per task (None: the whole split)")
    eval_split: str = option_field("test", "split evaluated")
    eval_batch_size: int = option_field(64, "generation batch size of the evaluations")
    pair_seed: int = option_field(0, "data seed: which training items build pairs and the pair builder's sampling "
                             "(the training seed is --seed; the evaluation's bootstrap seed is fixed)")
    options: dict[str, str] = option_field(None, "method options for its pair builder and loss (KEY=VALUE)")
    task_options: dict[str, dict[str, Any]] = option_field(
        None, "task loader options per task ({task: {key: value}}, --task-option TASK.KEY=VALUE): they enter "
              "the data digests, the pair cache key and the evaluation signature")
    text_pairs: str = option_field(DEFAULT_TEXT_PAIRS, "the default text pairs of methods without a pair builder "
                                   "(dpo, ipo, simpo...): 'sample-and-judge' (the paper: the base's own samples, k=4 "
                                   "at T=1, judged against the case; the verified injector where none is wrong) or "
                                   "'injector' (the verified injector alone)", TEXT_PAIR_MODES)
    device: str | None = option_field(None, "torch device (default: cuda when available)")
    store: str | None = option_field(None, "results store path (default: $HARNESS_HOME/results.sqlite)")
    train: TrainConfig | None = option_field(None, "training options (default: default_train_config(model))")

    def __post_init__(self) -> None:
        self.options = dict(self.options or {})
        self.task_options = {name: dict(values) for name, values in (self.task_options or {}).items()}
        self.tasks = tuple(self.tasks)
        if self.train is None:
            self.train = default_train_config(self.model)
        elif isinstance(self.train, dict):
            self.train = default_train_config(self.model, **self.train)
        if not self.tasks:
            raise HarnessError("harness run needs at least one task")
        for name in ("train_limit", "eval_limit"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise HarnessError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if self.eval_batch_size < 1:
            raise HarnessError(f"--eval-batch-size must be positive, got {self.eval_batch_size}")
        if self.text_pairs not in TEXT_PAIR_MODES:
            raise HarnessError(f"--text-pairs must be one of {', '.join(TEXT_PAIR_MODES)}, got {self.text_pairs!r}")
        if not self.train.merge_lora:
            raise HarnessError("harness run evaluates the trained model, so it needs --merge-lora")


@dataclass
class RunOutcome:
    run_id: str
    run_dir: Path
    base_run_id: str
    table: list[dict[str, Any]]
    pairs: int
    trained_model: Path | None
    pairs_dir: Path | None = None
    timings: dict[str, Any] | None = None  # time per stage, all sessions (harness.core.timing)


def resolve_base_model(spec: str) -> Path:
    """A local folder for the base model.

    A name in the model registry (``tiny``, ``testbed``, a plugin's) is built on first use by its registry
    entry, which returns the loaded model; its folder is read off it. ``<family>:<folder>`` and plain
    folders are used as they are.
    """
    from harness.models import MODELS

    if spec in MODELS and spec != "hf":
        folder = _builtin_folder(spec, MODELS)
        if folder is not None:
            return folder
        from harness.models import load_model

        model = load_model(spec, device="cpu")
        folder = getattr(model, "path", None)
        if not folder or not Path(folder).is_dir():
            raise HarnessError(f"model '{spec}' has no local folder to train (registry entry gave "
                               f"{type(model).__name__})")
        return Path(folder)
    prefix, sep, rest = spec.partition(":")
    candidate = Path(rest if sep and prefix not in ("openai",) else spec).expanduser()
    if not candidate.is_dir():
        raise HarnessError(f"harness run trains the base model, so it needs a local model folder or a built-in "
                           f"model name ({', '.join(n for n in MODELS.names() if n != 'hf')}), got '{spec}'")
    return candidate


def _builtin_folder(spec: str, models: Any) -> Path | None:
    """The folder of a built-in model (``tiny``, ``testbed``) built on first use, without loading its weights;
    None for any other registry entry (a plugin's model is loaded to find its folder)."""
    from harness.experiments import builtin_models

    try:
        entry = models.get(spec)
    except Exception:  # a lazy entry that cannot be resolved: let load_model report it
        return None
    loaders = {"tiny": builtin_models.load_tiny, "testbed": builtin_models.load_testbed}
    if loaders.get(spec) is not entry:
        return None
    return builtin_models.ensure_builtin(spec)


def base_model_name(spec: str, base_dir: Path) -> str:
    """How runs name (and every cache keys) the base model: ``<name>@<fingerprint>``, the registered name or
    the folder's name, and the content fingerprint of its weights (``harness.models.fingerprint``). New
    weights under the same path are another model; the folder's path never enters a result."""
    from harness.models import MODELS

    label = spec if spec in MODELS else base_dir.name
    return f"{label}@{model_fingerprint(base_dir)}"


def split_options(method_cls, options: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """``(loss hyperparameters, pair-builder options)``, validated before any model loads.

    A key must be one of the method's loss hyperparameters (``defaults``) or a declared option of its pair
    builder; anything else is a one-line error with a suggestion. Values are type-checked too.
    """
    from harness.core.options import check_known

    builder_keys: list[str] = []
    if method_cls.has_pair_builder():
        builder_keys = [o["name"] for o in method_cls.builder_options_help()]
    check_known(f"method '{method_cls.name}'", options, [*method_cls.defaults, *builder_keys])
    loss = {k: v for k, v in options.items() if k in method_cls.defaults}
    builder = {k: v for k, v in options.items() if k not in method_cls.defaults}
    if method_cls.has_pair_builder():
        method_cls.parse_builder_options(builder)  # values: types, choices, ablation names
    method_cls(**loss)  # type errors in hyperparameters, now rather than after pair building
    return loss, builder


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    """``importlib.metadata.packages_distributions()``, read once per process: it scans every installed
    distribution's file list (seconds), and a study asks for it once per run."""
    from importlib import metadata

    return metadata.packages_distributions()


def method_provenance(method_cls) -> dict[str, Any]:
    """The method's name, citation, defining module and version (of the distribution that ships it)."""
    from importlib import metadata

    module = method_cls.__module__
    top = module.split(".")[0]
    version = None
    for dist in _packages_distributions().get(top, []):
        try:
            version = metadata.version(dist)
            break
        except metadata.PackageNotFoundError:
            continue
    if version is None:
        import sys

        version = getattr(sys.modules.get(top), "__version__", None)
    return {"name": method_cls.name, "citation": method_cls.citation, "module": module, "version": version}


def check_config(config: RunConfig):
    """Every cheap check of a run, before any model loads: method, options, tasks. Returns the method class."""
    from harness.core.secrets import refuse_secret_options
    from harness.methods import get_method

    if not config.method:
        raise HarnessError("a run needs a method (--method NAME; harness methods lists them)")
    refuse_secret_options(config.options, "harness run --option")
    method_cls = get_method(config.method)  # unknown names fail with a suggestion
    split_options(method_cls, config.options)
    config.task_options = check_tasks(config)
    return method_cls


def check_tasks(config: RunConfig) -> dict:
    """The cheap checks of a run's tasks, whatever its method: the task names, their ``--task-option`` values
    (returned typed; one-line errors), the evaluation split and a train split to build pairs from."""
    from harness.core.options import shown
    from harness.tasks import get_task
    from harness.tasks.task_options import check_task_options

    task_options = check_task_options(config.task_options, config.tasks)
    for name in config.tasks:
        task = get_task(name)
        splits = ", ".join(task.splits)
        if config.eval_split not in task.splits:
            raise HarnessError(f"--eval-split {shown(config.eval_split)}: task '{name}' has no such split "
                               f"(splits: {splits})")
        if "train" not in task.splits:
            raise HarnessError(f"task '{name}' has no 'train' split to build pairs from (splits: {splits})")
    return task_options


# Settings that do not change a run's results: a resume may change them freely.
NOT_RESULT_SHAPING = {"device", "store", "train.save_every", "train.save_total_limit", "train.log_every",
                      "train.report_to", "train.run_name", "train.num_workers", "train.ref_cache",
                      "train.gradient_checkpointing"}


def fingerprint(config: RunConfig) -> dict[str, Any]:
    """Every setting that shapes a run's results, flattened (``train.lr``, ``options.beta``...)."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and prefix in ("", "train", "options"):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else key, item)
        elif prefix not in NOT_RESULT_SHAPING:
            flat[prefix] = value

    walk("", json.loads(json.dumps(config_dict(config), default=str)))
    return flat


def changed_settings(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Keys whose value differs between a saved fingerprint and this one (keys older code lacked are skipped)."""
    return [k for k in sorted(set(saved) | set(now)) if k in saved and saved.get(k) != now.get(k)]


def start_run(config: RunConfig, run_id: str | None = None, *, allow_changed: bool = False) -> tuple[str, bool]:
    """Check the run id and, for a resume, that it names a ``harness run`` with the same settings.

    Returns ``(run_id, resuming)``. A run id must be safe as a folder name (``harness.core.paths.check_run_id``);
    an existing folder must hold a ``harness run`` (not an evaluation) of the same method whose fingerprint
    matches, unless ``allow_changed``. One-line errors, before any model loads.
    """
    from harness.core.paths import check_run_id, runs_dir
    from harness.results.store import new_run_id

    run_id = check_run_id(run_id) or new_run_id()
    folder = runs_dir() / run_id
    manifest = folder / "pipeline.json"
    if not manifest.exists():
        if folder.exists() and any(p.name != "config.yaml" for p in folder.iterdir()):  # the CLI's saved config
            kind = "an evaluation (harness eval, or a base evaluation)" if (folder / "run.json").exists() \
                else "not a harness run"
            raise HarnessError(f"--run-id {run_id}: that run is {kind}; resume a harness run by its own id, "
                               "or pick a new id")
        return run_id, False
    saved = read_json(manifest)
    if saved.get("config", {}).get("method") != config.method:
        raise HarnessError(f"run '{run_id}' is a '{saved.get('config', {}).get('method')}' run, not "
                           f"'{config.method}'")
    saved_print, now = saved.get("fingerprint") or {}, fingerprint(config)
    changed = changed_settings(saved_print, now)
    if changed and not allow_changed:
        shown = ", ".join(f"{k} {saved_print.get(k)!r} -> {now.get(k)!r}" for k in changed[:6])
        more = f" and {len(changed) - 6} more" if len(changed) > 6 else ""
        raise HarnessError(f"run '{run_id}' was started with other settings ({shown}{more}); rerun with the "
                           "saved settings, start a new run, or pass --allow-changed")
    if changed:
        log.warning("run %s: resuming with changed settings (%s), as --allow-changed asks", run_id, ", ".join(changed))
    return run_id, True


def run(config: RunConfig, *, run_id: str | None = None, allow_changed: bool = False,
        on_start: Callable[[str, bool], None] | None = None, store=None) -> RunOutcome:
    """Run (or resume) the whole line; see the module docstring. ``on_start(run_id, resuming)`` is called
    once the run id is settled, before any model loads (the CLI prints it). A new run that fails before any
    stage saved work leaves no folder; a stored run is only ever a finished one. One process at a time per
    run id (``harness.core.paths.run_lock``): a second one fails at once with a one-line error. ``store``: where the
    run is stored instead of ``config.store`` (a study worker's ``harness.experiments.study.worker.RunFolderStore``)."""
    from harness.core.paths import check_run_id, run_lock
    from harness.results.store import ResultsStore, new_run_id
    from harness.tasks.task_options import task_options

    method_cls = check_config(config)
    loss_options, builder_options = split_options(method_cls, config.options)
    run_id = check_run_id(run_id) or new_run_id()
    # held before the folder is read, so two starts of one id never both see it new
    with run_lock(run_id), task_options(config.task_options):
        run_id, resuming = start_run(config, run_id, allow_changed=allow_changed)
        log.info("run %s: %s (resume with --run-id %s)", run_id, "resuming" if resuming else "starting", run_id)
        if on_start is not None:
            on_start(run_id, resuming)
        base_dir = resolve_base_model(config.model)  # a bad model spec fails before the run folder exists
        store = store if store is not None else ResultsStore(config.store)
        run_dir = _runs_dir() / run_id
        try:
            with clock() as run_clock:
                outcome = _run(config, method_cls, loss_options, builder_options, run_id, run_dir, base_dir, store,
                               resuming)
            outcome.timings = write_run_timings(run_dir, run_clock)
            return outcome
        except BaseException:
            if not resuming:
                _remove_if_only_manifest(run_dir)
            raise


def write_run_timings(run_dir: Path, run_clock) -> dict[str, Any]:
    """The run's time per stage (``harness.core.timing``) in ``timings.json``, added to a resumed run's earlier
    sessions; metadata beside the run, never part of its fingerprint or results."""
    from harness.core.timing import add

    path = run_dir / "timings.json"
    saved = read_json(path) if path.is_file() else {}
    timings = add(saved.get("total"), run_clock.as_dict())
    write_json(path, {"total": timings, "sessions": [*saved.get("sessions", []), run_clock.as_dict()]})
    return timings


def _runs_dir() -> Path:
    from harness.core.paths import runs_dir

    return runs_dir()


def _remove_if_only_manifest(run_dir: Path) -> None:
    if run_dir.is_dir() and all(p.name in ("pipeline.json", "config.yaml") for p in run_dir.iterdir()):
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)


def _run(config: RunConfig, method_cls, loss_options, builder_options, run_id: str, run_dir: Path,
         base_dir: Path, store, resuming: bool) -> RunOutcome:
    manifest = run_dir / "pipeline.json"
    provenance = method_provenance(method_cls)
    record: dict[str, Any] = {"run_id": run_id, "status": "running", "config": config_dict(config),
                              "fingerprint": fingerprint(config), "method": provenance}
    if resuming:
        saved = read_json(manifest)
        record = {**saved, **record, "started_with": saved.get("started_with") or saved.get("fingerprint")}
    write_json(manifest, record)

    base_name = base_model_name(config.model, base_dir)
    record.update(base_model=base_name, base_run_id=base_run_id_for(config, base_name))
    write_json(manifest, record)  # the base evaluation's id before it starts: a killed one resumes under it
    base_run_id = evaluate_base(config, base_dir, base_name, store)

    method = method_cls(**loss_options)
    pair_folder = pairs_dir(config, base_name, builder_options)
    record.update(base_run_id=base_run_id, pairs_dir=str(pair_folder))
    write_json(manifest, record)
    pairs = build_pairs(config, method, base_dir, pair_folder, builder_options)

    with stage("training"):
        trained = train(config, method, pairs, base_dir, run_dir, base_name=base_name)
    from harness.results.card import write_run_cards

    write_run_cards(run_dir)  # over PEFT's empty template at once; "evaluation pending" until it finishes
    with stage("evaluation"):
        eval_trained(config, trained, run_id, run_dir, base_name, store, provenance, base_run_id=base_run_id)
    record["status"] = "finished"
    write_json(manifest, record)
    write_run_cards(run_dir)  # now with the results (harness.results.card)
    table = comparison_table(store, base_run_id, run_id, config.tasks)
    return RunOutcome(run_id, run_dir, base_run_id, table, len(pairs), trained, pair_folder)


def config_dict(config: RunConfig) -> dict[str, Any]:
    """The run config as JSON-ready data (the training options nested under ``train``)."""
    data = asdict(config)
    data["tasks"] = list(config.tasks)
    return data


# The evaluation's bootstrap seed, the same for every run: a base evaluation never depends on the pair seed, so
# every seed of a study (each with its own pair draw) shares one, and method runs are scored alike.
EVAL_SEED = 0


def _eval_signature(config: RunConfig) -> dict[str, Any]:
    """What makes two evaluations comparable: tasks, split, limit, seed, and the evaluated items' content
    (``harness.tasks.identity``), so an evaluation on other data is never reused or compared as the same."""
    from harness.tasks import get_task
    from harness.tasks.identity import split_digest

    data = {name: split_digest(get_task(name), config.eval_split, config.data_dir, limit=config.eval_limit)[:16]
            for name in sorted(config.tasks)}
    signature = {"tasks": sorted(config.tasks), "split": config.eval_split, "limit": config.eval_limit,
                 "seed": EVAL_SEED, "data": data}
    # the scoring rules' versions: a base evaluation scored by an earlier closed-answer reader or labeler holds
    # the earlier scores, so it is not reused next to a method scored now
    from harness.metrics.registry import scoring_versions

    scoring = scoring_versions(m for name in config.tasks for m in get_task(name).metrics)
    if scoring:
        signature["scoring"] = scoring
    if config.task_options:  # only when set: the signatures (and base run ids) of earlier runs stay valid
        from harness.tasks.task_options import keyed

        signature["task_options"] = keyed(config.task_options)  # a path option by its name only
    return signature


def base_run_id_for(config: RunConfig, base_name: str) -> str:
    """The base evaluation's run id: derived from the base model and the evaluation's signature, so a killed
    base evaluation resumes under its own id (and its saved answers) on the next run that needs it."""
    key = json.dumps({"base_model": base_name, **_eval_signature(config)}, sort_keys=True)
    return "base-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def evaluate_base(config: RunConfig, base_dir: Path, base_name: str, store) -> str:
    """The base model's run on these tasks: reused from the store when one exists, else evaluated now
    (resuming the predictions of a killed evaluation under ``base_run_id_for``)."""
    signature = _eval_signature(config)
    for row in reversed(store.runs()):
        saved = row["config"]
        if row["model"] == base_name and saved.get("role") == "base" and saved.get("signature") == signature:
            log.info("base model: reusing evaluation run %s", row["run_id"])
            return row["run_id"]
    from harness.evaluation import evaluate
    from harness.models.hf import load_hf_model

    with stage("base_evaluation"):
        model = load_hf_model(base_dir, device=config.device, name=base_name)
        run_id = base_run_id_for(config, base_name)
        log.info("evaluating the base model on %s (run %s)", ", ".join(config.tasks), run_id)
        evaluate(model, list(config.tasks), split=config.eval_split, limit=config.eval_limit,
                 batch_size=config.eval_batch_size, data_dir=config.data_dir, store=store, seed=EVAL_SEED,
                 run_id=run_id, run_config={"role": "base", "signature": signature, "base_model": base_name})
    return run_id


def evaluate_base_model(config: RunConfig) -> str:
    """The base model's evaluation run id for ``config`` (evaluated now unless the store holds one)."""
    from harness.results.store import ResultsStore
    from harness.tasks.task_options import check_task_options, task_options

    config.task_options = check_task_options(config.task_options, config.tasks)  # typed, as run() has them
    base_dir = resolve_base_model(config.model)
    with task_options(config.task_options):
        return evaluate_base(config, base_dir, base_model_name(config.model, base_dir), ResultsStore(config.store))


def pairs_dir(config: RunConfig, base_name: str, builder_options: dict[str, str]) -> Path:
    """The pair cache of this method, base model, data and builder options (not the training seed).

    Every method without a pair builder trains on the same default text pairs, so they share one cache,
    ``default-text-<key>``, keyed by what those pairs depend on (not by the method): DPO, IPO, SimPO and SFT
    of one study sample the base once per pair draw, not once per method.
    """
    from harness.core.paths import harness_home
    from harness.methods import get_method
    from harness.tasks import get_task
    from harness.tasks.identity import split_digest

    # the training items by content (as build_pairs selects them), never the data folder's path
    data = {name: split_digest(get_task(name), "train", config.data_dir, limit=config.train_limit,
                               shuffle_seed=config.pair_seed)[:16] for name in config.tasks}
    key = {"base_model": base_name, "tasks": list(config.tasks), "train_limit": config.train_limit,
           "pair_seed": config.pair_seed, "data": data}
    if config.task_options:
        from harness.tasks.task_options import keyed

        key["task_options"] = keyed(config.task_options)
    if get_method(config.method).has_pair_builder():
        key.update(method=config.method, builder_options={k: str(v) for k, v in sorted(builder_options.items())})
        name = config.method
    else:  # the default text pairs: their mode and version
        key.update(pairs="default-text", text_pairs=config.text_pairs, text_pairs_version=TEXT_PAIRS_VERSION)
        name = "default-text"
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    folder = harness_home() / "pairs" / f"{name}-{digest}"
    if not (folder / "key.json").exists():
        write_json(folder / "key.json", key)
    return folder


def build_pairs(config: RunConfig, method, base_dir: Path, folder: Path,
                options: dict[str, str]) -> list[PreferencePair]:
    """The method's pairs for every task's train split (cached in ``folder/pairs.jsonl``), image paths absolute.

    A method without a pair builder gets the default text pairs (``config.text_pairs``); their
    ``manifest.json`` (beside ``pairs.jsonl``) gives, per task, the pairs' sources, their error-type mix next
    to the base's own greedy error distribution, and the denial rule (``harness.curation.textpairs``)."""
    with stage("pairs"):
        return _build_pairs(config, method, base_dir, folder, options)


def _build_pairs(config: RunConfig, method, base_dir: Path, folder: Path,
                 options: dict[str, str]) -> list[PreferencePair]:
    path = folder / "pairs.jsonl"
    if path.exists():
        pairs = list(read_pairs(path))
        log.info("pairs: reusing %d pairs from %s", len(pairs), folder.name)
        return pairs
    from harness.methods import PairContext
    from harness.tasks import get_task

    model = None
    pooled: list[PreferencePair] = []
    manifests: dict[str, Any] = {}
    for name in config.tasks:
        task = get_task(name)
        samples = task.load("train", data_dir=config.data_dir)
        if config.train_limit is not None and len(samples) > config.train_limit:
            samples = samples.shuffle(seed=config.pair_seed).select(range(config.train_limit))
        if not method.has_pair_builder():
            if model is None and config.text_pairs == "sample-and-judge":
                from harness.models.hf import load_hf_model

                model = load_hf_model(base_dir, device=config.device)
            built = default_text_pairs(task, samples, config.pair_seed, mode=config.text_pairs, model=model)
            manifests[name] = built.manifest
            log.info("pairs: %s: %s", name, mix_summary(built.manifest))
            pooled += built
            continue
        if model is None and method.builder_needs_model(options):
            from harness.models.hf import load_hf_model

            model = load_hf_model(base_dir, device=config.device)
        out = folder / "pairs" / name
        context = PairContext(task=task, samples=samples, model=model, output_dir=out, seed=config.pair_seed,
                              options=dict(options))
        for pair in method.build_pairs(context):
            pair.image = str((out / pair.image).resolve())
            if pair.rejected_image:
                pair.rejected_image = str((out / pair.rejected_image).resolve())
            pair.id = f"{name}-{pair.id}"
            pooled.append(pair)
    if not pooled:
        raise HarnessError(f"method '{config.method}' built no pairs for {', '.join(config.tasks)}")
    if manifests:  # before pairs.jsonl, whose presence marks the cache finished
        write_json(folder / "manifest.json", {"text_pairs": config.text_pairs, "version": TEXT_PAIRS_VERSION,
                                              "tasks": manifests})
    write_pairs(path, pooled)
    kinds = {k: sum(p.kind == k for p in pooled) for k in sorted({p.kind for p in pooled})}
    log.info("pairs: %d (%s)", len(pooled), ", ".join(f"{k} {v}" for k, v in kinds.items()))
    return pooled


def prepare_pairs(config: RunConfig) -> tuple[Path, int]:
    """Build (or reuse) the pairs a run of ``config`` trains on, without training: ``(pair folder, pairs)``.

    ``harness study`` calls it for every run before any training, so every method can train the same number
    of optimizer steps (enough for the largest pair set); the run itself then reuses the cached pairs.
    """
    from harness.tasks.task_options import task_options

    method_cls = check_config(config)
    loss_options, builder_options = split_options(method_cls, config.options)
    base_dir = resolve_base_model(config.model)
    with task_options(config.task_options):
        folder = pairs_dir(config, base_model_name(config.model, base_dir), builder_options)
        pairs = build_pairs(config, method_cls(**loss_options), base_dir, folder, builder_options)
    return folder, len(pairs)


def train(config: RunConfig, method, pairs: list[PreferencePair], base_dir: Path, run_dir: Path,
          base_name: str | None = None) -> Path:
    """The run's trained model: its own finished one, else (inside a study) the model of an earlier run that
    trained exactly the same (``harness.experiments.trained_cache``: base weights, pairs, method, result-shaping
    options), else trained now (resuming from the last checkpoint)."""
    from harness.experiments import trained_cache
    from harness.training import checkpoint as ckpt
    from harness.training import train_preference

    out = run_dir / "train"
    final = out / "model"
    if (final / "config.json").exists():
        log.info("training: reusing the trained model in %s", final.relative_to(run_dir))
        return final
    key = None
    if trained_cache.active():  # inside a study
        key = trained_cache.training_key(base_name or base_model_name(config.model, base_dir), method, pairs,
                                         config.train.to_dict(), NOT_RESULT_SHAPING)
    resume = out.exists() and bool(ckpt.checkpoint_dirs(out))
    source = None if resume or key is None else trained_cache.find(key)
    if source is not None:
        log.info("training: run %s trained exactly this (same base weights, pairs, method and training options): "
                 "reusing its model", source.parent.name)
        return trained_cache.copy_into(source, out, key, source.parent.name)
    from harness.models.hf import load_hf_model
    from harness.training import refstore

    model = load_hf_model(base_dir, dtype=config.train.precision, device="cpu")  # accelerate places it
    # the reference is these base weights: a study's runs on the same batches share its log-probs
    with refstore.bind(weights=model_fingerprint(base_dir), precision=config.train.precision, lora=config.train.lora):
        result = train_preference(model, method, pairs, None, out, config.train, resume=resume)
    if result.model_path is None:
        raise HarnessError("training saved no full model (merge_lora is off)")
    if key is not None:
        trained_cache.remember(key, run_dir.name, out)
    return Path(result.model_path)


def eval_trained(config: RunConfig, model_dir: Path, run_id: str, run_dir: Path, base_name: str, store,
                 provenance: dict[str, Any] | None = None, *, base_run_id: str | None = None) -> None:
    from harness.evaluation import evaluate
    from harness.models.hf import load_hf_model

    if store.runs(run_ids=[run_id]):
        log.info("evaluation: run %s is already stored", run_id)
        return
    model = load_hf_model(model_dir, device=config.device, name=f"{base_name}+{config.method}")
    result = evaluate(model, list(config.tasks), split=config.eval_split, limit=config.eval_limit,
                      batch_size=config.eval_batch_size, data_dir=config.data_dir, store=store, seed=EVAL_SEED,
                      run_id=run_id, output_dir=run_dir / "eval",
                      run_config={"role": "method", "signature": _eval_signature(config), "method": config.method,
                                  "base_model": base_name, "pipeline": config_dict(config),
                                  "method_info": provenance or {}, "train_seed": config.train.seed,
                                  "base_run_id": base_run_id,  # the leaderboard's Δ baseline, by id
                                  "pair_seed": config.pair_seed})
    if result.is_main:  # the trained model's scores, next to its training curves (--report-to)
        from harness.training.trackers import log_evaluation

        log_evaluation(run_dir / "train", result.result_rows())


def comparison_table(store, base_run_id: str, run_id: str, tasks: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows: the base model, this run, and earlier runs on the same tasks from the same base model."""
    from harness.results.compare import display_scale, headline_metrics
    from harness.tasks import get_task

    base = store.get_run(base_run_id)
    signature = base["config"].get("signature")
    runs = [base] + [r for r in store.runs() if r["run_id"] != base_run_id and r["config"].get("role") == "method"
                     and r["config"].get("signature") == signature and r["base_model"] == base["model"]]
    runs.sort(key=lambda r: (r["run_id"] != base_run_id, r["run_id"] == run_id, r["created_at"]))
    results = store.results(run_ids=[r["run_id"] for r in runs], tasks=list(tasks))
    by_run: dict[str, dict[tuple[str, str], dict]] = {}
    for row in results:
        by_run.setdefault(row["run_id"], {})[(row["task"], row["metric"])] = row
    columns = [(t, m) for t in tasks for m in headline_metrics(get_task(t))]
    table = []
    for r in runs:
        label = "base" if r["run_id"] == base_run_id else (r["method"] or "?")
        seed = r["config"].get("train_seed")
        if r["run_id"] != base_run_id and seed not in (None, 0):
            label += f" (seed {seed})"
        if r["run_id"] == run_id:
            label += " (this run)"
        row: dict[str, Any] = {"run": label, "run_id": r["run_id"]}
        for task, metric in columns:
            cell = by_run.get(r["run_id"], {}).get((task, metric))
            scale = display_scale(metric)
            row[f"{task}/{metric}"] = None if cell is None else (
                f"{cell['value'] * scale:.1f} [{cell['ci_low'] * scale:.1f}, {cell['ci_high'] * scale:.1f}]"
                if cell["ci_low"] is not None else f"{cell['value'] * scale:.1f}")
        table.append(row)
    return table
