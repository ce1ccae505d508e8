"""``harness run``: the whole pipeline for one method, ending in a comparison table.

Examples::

  harness run --method mmedpo                          # the embedded default: testbed model, synthetic suite
  harness run --method dpo                             # same base model and tasks: the table shows both
  harness run --method dpo --text-pairs injector       # DPO on the injector's pairs instead of the base's own samples
  harness run --method mmedpo --option ablation=no-visual --option noise=global
  harness run --method dpo --seed 1 --grad-accum 2 --gradient-checkpointing --ref-cache refcache/
  harness run --method povid --tasks vqa_rad --data-dir ../shared/data --model llava:/models/llava-med-hf
  harness run --method mmedpo --run-id 20261125-120000-abc123   # resume an interrupted run
  harness run --config examples/configs/run.yaml --seed 1        # flags from a YAML file; flags given here win
  harness run --method dpo --tasks vqa_rad --data-dir ../shared/data --task-option vqa_rad.source=osf

Every training option of ``harness train`` is a flag here too (--lr, --batch-size, --grad-accum, --seed...).
On the built-in small models (tiny, testbed) a run trains with lr 1e-4, batch size 8 and max length 512
unless told otherwise; on any model it checkpoints every 20 steps (--save-every). --seed is the training
seed; --pair-seed is the data seed (which items build pairs, the pair builder's sampling). --format json prints
only JSON on stdout: the run ids and every table cell as numbers (value, ci_low, ci_high in display units).
The run folder keeps the effective config as config.yaml: harness run --config of it reruns the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing

from harness.cli.common import (
    add_format_option,
    add_progress_options,
    add_task_option_option,
    emit,
    print_json,
    stdout_for_data,
)
from harness.cli.config_file import add_config_option

EPILOG = __doc__.split("Examples::", 1)[1]
# RunConfig fields that are not plain flags
_SPECIAL = ("options", "train", "tasks", "task_options")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="pairs -> training -> evaluation -> comparison table, for one method",
        description="Run one method end to end on a base model and tasks, store the results, and print the "
                    "base model, this run and earlier runs side by side.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_option(parser)
    add_run_arguments(parser)
    parser.add_argument("--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
                        help="a method option (repeatable): a loss hyperparameter (beta=0.2) or a pair-builder "
                             "option (ablation=no-visual)")
    parser.add_argument("--run-id", default=None,
                        help="resume (or name) this run: 1-64 letters, digits, '.', '_', '-' (printed at the start)")
    parser.add_argument("--allow-changed", action="store_true",
                        help="resume --run-id even though settings that shape results changed (listed in a warning)")
    add_progress_options(parser)
    add_format_option(parser)
    parser.set_defaults(func=handle)


def add_run_arguments(parser: argparse.ArgumentParser, *, exclude: tuple[str, ...] = ()) -> None:
    """One flag per ``RunConfig`` field and one per ``TrainConfig`` field (the generator of ``harness train``).

    The training flags whose run default depends on the model (``SMALL_MODEL_TRAIN_DEFAULTS``,
    ``RUN_TRAIN_DEFAULTS``) parse to None when not given, and ``run_config_from_args`` fills them in.
    """
    from harness.cli.commands.train import add_config_arguments
    from harness.experiments.pipeline import RUN_TRAIN_DEFAULTS, SMALL_MODEL_TRAIN_DEFAULTS, RunConfig

    hints = typing.get_type_hints(RunConfig)
    for f in dataclasses.fields(RunConfig):
        if f.name in exclude or f.name in ("options", "train", "task_options"):
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata["help"]
        if "default" not in help_text:
            help_text += f" (default: {_show(f.default)})"
        if f.name == "tasks":
            parser.add_argument(flag, default=",".join(f.default), help=help_text + "; comma-separated")
        elif hints[f.name] is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text)
        else:
            kind = _limit if f.name in ("train_limit", "eval_limit") else {int: int}.get(type(f.default), str)
            parser.add_argument(flag, type=kind, default=f.default, help=help_text)
    add_task_option_option(parser)
    add_config_arguments(parser)
    parser.set_defaults(**{name: None for name in {**RUN_TRAIN_DEFAULTS, **SMALL_MODEL_TRAIN_DEFAULTS}})


def run_config_from_args(args: argparse.Namespace, **fields):
    """A ``RunConfig`` from the parsed flags; ``fields`` (method, options...) are set directly."""
    from harness.cli.common import task_options_from_args
    from harness.experiments.pipeline import (
        RUN_TRAIN_DEFAULTS,
        SMALL_MODEL_TRAIN_DEFAULTS,
        RunConfig,
        default_train_config,
    )
    from harness.training.config import TrainConfig

    model_dependent = {**RUN_TRAIN_DEFAULTS, **SMALL_MODEL_TRAIN_DEFAULTS}
    train = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if not (f.name in model_dependent and getattr(args, f.name) is None)}
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)
              if f.name not in _SPECIAL and hasattr(args, f.name)}
    values["tasks"] = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    values["task_options"] = task_options_from_args(args, values["tasks"])
    values.update(fields)
    model = values.get("model") or RunConfig.model
    return RunConfig(**values, train=default_train_config(model, **train))


def _show(value) -> str:
    return ",".join(value) if isinstance(value, tuple) else str(value)


def _limit(value: str) -> int | None:
    """A positive number of items, or ``all``/``none`` for the whole split; 0 and negative numbers reach
    ``RunConfig``, which refuses them in one line (0 never means "no limit")."""
    if value.lower() in ("none", "all"):
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'all', got {value[:80]!r}") from None


def handle(args: argparse.Namespace) -> int:
    import sys

    from harness.core.errors import HarnessError
    from harness.core.options import parse_key_values
    from harness.experiments.pipeline import check_config, run

    config = run_config_from_args(args, options=parse_key_values(args.options))
    check_config(config)  # method, option keys and tasks: one-line errors before any model loads
    started: list[str] = []

    def announce(run_id: str, resuming: bool) -> None:
        from harness.cli.config_file import save_effective_config
        from harness.core.paths import runs_dir

        started.append(run_id)
        save_effective_config(args, runs_dir() / run_id, "run")  # beside pipeline.json: reruns this run
        print(f"run {run_id}: {'resuming' if resuming else 'starting'} {config.method} on {config.model} "
              f"(resume with --run-id {run_id})", file=sys.stderr, flush=True)

    with stdout_for_data(args.format == "json"):  # DeepSpeed's accelerator line and the like go to stderr
        try:
            outcome = run(config, run_id=args.run_id, allow_changed=args.allow_changed, on_start=announce)
        except BaseException as exc:
            if started:  # a run that failed before its first stage leaves no folder (config.yaml alone) behind
                from harness.cli.config_file import remove_lone_config
                from harness.core.paths import runs_dir

                remove_lone_config(runs_dir() / started[0])
            if not isinstance(exc, KeyboardInterrupt):
                raise
            where = f"--run-id {started[0]}" if started else "the same --run-id"
            raise HarnessError(f"interrupted: rerun with {where} to resume") from None
        deltas = _deltas(outcome, config)
        data = json_summary(outcome, config, deltas) if args.format == "json" else None
    if data is not None:
        print_json(data)
        return 0
    print(f"\nrun {outcome.run_id}: {config.method} on {config.model}, {outcome.pairs} pairs "
          f"(base evaluation: run {outcome.base_run_id})")
    columns = [c for c in outcome.table[0] if c != "run_id"] if outcome.table else None
    emit(outcome.table, "table", columns)
    if deltas:
        row = {"Δ vs base": "this run"}
        row.update({key: _delta_cell(d) for key, d in deltas.items()})
        print()
        emit([row], "table", ["Δ vs base", *(c for c in columns or () if c in deltas)])
    print("values x100 with 95% intervals; false_finding_rate and hallucination_rate: lower is better. How to read "
          "it: Δ is this run minus the base on the same test items, with its 95% paired-bootstrap interval; * marks "
          "a difference whose interval excludes 0. That is one training seed: to compare methods, run harness study "
          "(seeds, equal steps, tested over items and seeds).")
    return 0


def _deltas(outcome, config) -> dict:
    """This run minus the base, paired over the test items (``harness.experiments.study.analysis.paired_deltas``)."""
    from harness.experiments.study.analysis import paired_deltas
    from harness.results.store import ResultsStore

    if outcome.run_id == outcome.base_run_id:
        return {}
    return paired_deltas(ResultsStore(config.store), outcome.base_run_id, outcome.run_id, list(config.tasks))


def _delta_cell(delta: dict) -> str:
    if delta["delta"] is None:
        return "-"
    interval = "" if delta["ci_low"] is None else f" [{delta['ci_low']:+.1f}, {delta['ci_high']:+.1f}]"
    return f"{delta['delta']:+.1f}{interval}{' *' if delta['significant'] else ''}"


def json_summary(outcome, config, deltas: dict | None = None) -> dict:
    """``harness run --format json``: the comparison table with numbers, not display strings.

    ``{"run_id", "base_run_id", "pairs", "units", "runs": [{"run", "run_id", "metrics": {"task/metric":
    {"value", "ci_low", "ci_high", "n"}}}], "delta_vs_base": {"task/metric": {"delta", "ci_low", "ci_high", "p",
    "n_items", "significant"}}}``, values in display units (x100 for rates), null where a run has no value or
    no interval; ``delta_vs_base`` is this run minus the base, paired over the test items.
    """
    from harness.results.compare import display_scale
    from harness.results.store import ResultsStore

    store = ResultsStore(config.store)
    run_ids = [row["run_id"] for row in outcome.table]
    cells: dict[tuple[str, str], dict] = {}
    for row in store.results(run_ids=run_ids, tasks=list(config.tasks)):
        cells[(row["run_id"], f"{row['task']}/{row['metric']}")] = row
    runs = []
    for row in outcome.table:
        metrics = {}
        for key in (k for k in row if "/" in k):
            cell = cells.get((row["run_id"], key))
            scale = display_scale(key.split("/", 1)[1])
            metrics[key] = None if cell is None else {
                "value": _scaled(cell["value"], scale), "ci_low": _scaled(cell["ci_low"], scale),
                "ci_high": _scaled(cell["ci_high"], scale), "n": cell.get("n")}
        runs.append({"run": row["run"], "run_id": row["run_id"], "metrics": metrics})
    return {"run_id": outcome.run_id, "base_run_id": outcome.base_run_id, "pairs": outcome.pairs,
            "units": "display (x100 for rates, as the table prints)", "runs": runs, "delta_vs_base": deltas or {}}


def _scaled(value, scale: float):
    return None if value is None else float(value) * scale
