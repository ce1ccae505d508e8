"""``harness study``: several methods x several training seeds, one paired comparison table.

Examples::

  harness study --methods base,dpo,mmedpo --seeds 3
  harness study --methods base,dpo,mmedpo,mmedpo[ablation=no-visual] --seeds 3 --format md
  harness study --methods dpo,dpo[beta=0.5] --seed-list 0,7 --reference dpo --train-limit 200 --eval-limit 100
  harness study --methods base,dpo,mmedpo --seeds 3 --study-id 20261125-120000-abc123   # resume
  harness study --study-id 20261125-120000-abc123 --report-only                        # table of what is done
  harness study --config examples/configs/study.yaml                                  # flags from a YAML file
  harness study --methods base,dpo,mmedpo --seeds 5 --executor ray --executor-option num_gpus=4
  harness study --methods base,dpo,mmedpo --seeds 5 --executor slurm --executor-option partition=gpu --max-parallel 8

A method entry is NAME or NAME[KEY=VALUE,...] (options as in harness run --option); 'base' is the base
model itself. Each entry is trained with every seed (0..N-1, or --seed-list), each seed with its own pair
draw (--pair-draw shared: one draw for all); the base evaluation is shared by every run. Every run trains the
same number of optimizer steps (--budget), and each entry's learning rate is chosen on the validation split
by the same rule for every method (--lr-rule); both are recorded in study.json. Every harness run
flag (model, tasks, limits, training options) applies to every run. Each difference is tested on the metric
as printed, over test items and training seeds, with Holm's correction over the study's tests
(docs/study.md). The table, results.json and effects.svg are written to $HARNESS_HOME/studies/<study_id>/.
"""

from __future__ import annotations

import argparse
import sys

EPILOG = __doc__.split("Examples::", 1)[1]


def register(subparsers: argparse._SubParsersAction) -> None:
    from harness.cli.commands.run import add_run_arguments
    from harness.cli.common import add_progress_options
    from harness.cli.config_file import add_config_option
    from harness.experiments.study.runner import BUDGETS, LR_GRID, LR_RULES, PAIR_DRAWS
    from harness.stats.multiplicity import CORRECTIONS

    parser = subparsers.add_parser(
        "study", help="several methods x training seeds: mean ± sd, paired tests vs base and a reference, MDE",
        description="Run every method entry with several training seeds (sharing the base evaluation and the "
                    "pairs), store every run, and print per metric the mean ± sd over seeds, the difference "
                    "from the base model and from a reference method with paired tests, and the minimum "
                    "detectable effect. Interrupt it any time; rerun with --study-id to resume.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_option(parser)
    parser.add_argument("--methods", default=None,
                        help="comma-separated method entries: base, NAME or NAME[KEY=VALUE,...] (required for a "
                             "new study)")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1 per method (default: 3)")
    parser.add_argument("--seed-list", default=None, help="comma-separated training seeds instead of --seeds")
    parser.add_argument("--reference", default=None,
                        help="method entry the others are also compared with (default: the study reference the installed "
                             "methods declare; docs/study.md)")
    parser.add_argument("--study-id", default=None, help="resume (or name) this study")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: compare the study's finished runs (needs --study-id)")
    parser.add_argument("--pair-draw", choices=PAIR_DRAWS, default="per-seed",
                        help="per-seed: the run with training seed s draws pairs with pair seed --pair-seed + s "
                             "(default); shared: every seed trains on the one draw of --pair-seed")
    parser.add_argument("--budget", choices=BUDGETS, default="steps",
                        help="steps: every run trains the same number of optimizer steps, one pass over the study's "
                             "largest pair set unless --steps (default); epochs: --epochs passes over each run's own "
                             "pairs; paper: the MMedPO paper's 3 epochs, 3%% warm-up, cosine")
    parser.add_argument("--steps", type=int, default=None,
                        help="the optimizer steps of every run under --budget steps (default: one pass over the "
                             "largest pair set)")
    parser.add_argument("--lr-rule", choices=LR_RULES, default="sweep",
                        help="sweep: each method entry trains at the best of --lr-grid x --lr on the validation split "
                             "(the mean of each task's first headline metric) (default); fixed: --lr for all")
    parser.add_argument("--lr-grid", default=",".join(f"{g:g}" for g in LR_GRID),
                        help="comma-separated multiples of --lr a sweep tries (default: %(default)s)")
    parser.add_argument("--val-split", default="val",
                        help="split a sweep scores rates on: held out from pairs and test (default: val)")
    parser.add_argument("--val-limit", type=int, default=300, help="validation items per task a sweep scores "
                                                                    "(default: 300)")
    parser.add_argument("--n-boot", type=int, default=2000,
                        help="bootstrap resamples of the test items for every comparison (default: 2000)")
    parser.add_argument("--correction", choices=CORRECTIONS, default="holm",
                        help="multiple-testing correction over the study's tests: holm (family-wise), bh "
                             "(Benjamini-Hochberg, false discovery rate) or none (default: holm)")
    parser.add_argument("--format", choices=("table", "json", "md"), default="table",
                        help="output format (json: the records only, numbers in display units)")
    from harness.experiments.study.executors import EXECUTORS

    parser.add_argument("--executor", choices=EXECUTORS, default="local",
                        help="where the runs execute: local (one after another here, default), ray (each run a Ray "
                             "task) or slurm (each run a Slurm job through submitit); docs/study.md")
    parser.add_argument("--max-parallel", type=int, default=None,
                        help="runs executing at once under ray or slurm (default: as many as the executor schedules)")
    parser.add_argument("--executor-option", dest="executor_options", action="append", default=[],
                        metavar="KEY=VALUE", help="an executor's option, e.g. address=auto, num_gpus=4, partition=gpu, "
                                                  "retries=2 (repeatable; docs/study.md lists them)")
    add_run_arguments(parser, exclude=("method",))
    add_progress_options(parser)
    parser.set_defaults(func=handle)


def _seeds(args: argparse.Namespace) -> list[int]:
    from harness.core.errors import HarnessError

    if args.seed != 0:
        raise HarnessError("harness study sets the training seed of each run: use --seeds N or --seed-list, not --seed")
    if args.seed_list:
        try:
            return [int(s) for s in args.seed_list.split(",") if s.strip()]
        except ValueError:
            raise HarnessError(f"--seed-list expects comma-separated integers, got {args.seed_list!r}") from None
    if args.seeds < 1:
        raise HarnessError(f"--seeds must be at least 1, got {args.seeds}")
    return list(range(args.seeds))


def _grid(text: str) -> tuple[float, ...]:
    from harness.core.errors import HarnessError

    try:
        return tuple(float(g) for g in text.split(",") if g.strip())
    except ValueError:
        raise HarnessError(f"--lr-grid expects comma-separated numbers, got {text!r}") from None


def handle(args: argparse.Namespace) -> int:
    from harness.cli.common import print_json, stdout_for_data

    with stdout_for_data(args.format == "json"):  # only the records on stdout: library banners go to stderr
        study, result = _run_and_report(args)
    if args.format == "json":
        print_json(result["records"])
        _print_timings(study, sys.stderr)
        return 0
    if args.format == "md":
        print(result["files"]["md"].read_text(), end="")
        _print_timings(study, sys.stdout)
        return 0
    from harness.cli.common import format_table

    state = study.state
    done = sum(r["state"] == "done" for r in state["runs"])
    draw = state.get("settings", {}).get("pair_draw", "shared")
    print(f"\nstudy {study.study_id}: {', '.join(state['methods'])} x seeds {state['seeds']} "
          f"({done}/{len(state['runs'])} runs done, pairs drawn {draw}; base evaluation: run {state['base_run_id']})")
    print(format_table(result["rows"]))
    correction = result["records"][0]["correction"] if result["records"] else args.correction
    print(f"values in display units (x100 for rates); mean ± sd over training seeds; Δ with its 95% interval and p "
          f"over test items and training seeds, (adj.): {correction}; 'item-level only': significant only with the "
          "seeds taken as given; MDE: alpha 0.05 two-sided, power 0.8, vs base (docs/study.md)")
    print(f"written: {result['files']['md']}, {result['files']['json'].name}, {result['files']['svg'].name}")
    _print_timings(study, sys.stdout)
    return 0


def _print_timings(study, stream) -> None:
    """Where the time went: each run's stages and the whole study's (this and earlier invocations), from
    ``timings.json`` (absent after --report-only on a study run by an older harness)."""
    from harness.cli.common import format_table
    from harness.core.io import read_json
    from harness.core.timing import split_table

    path = study.folder / "timings.json"
    if not path.is_file():
        return
    timings = read_json(path)
    rows = [(record["label"], record) for record in timings.get("runs", {}).values()]
    rows.append(("study (all invocations)", timings["total"]))
    print(f"\ntime per stage, seconds (share of the row's wall time); {path.name}:", file=stream)
    print(format_table(split_table(rows)), file=stream)


def _run_and_report(args: argparse.Namespace):
    from harness.cli.commands.run import run_config_from_args
    from harness.core.errors import HarnessError
    from harness.core.paths import check_run_id
    from harness.experiments.study import StudyConfig, load_study, parse_methods, report, run_study

    check_run_id(args.study_id)  # a study id names a folder too: no '/' or '..', at most 64 characters
    if args.n_boot < 100:
        raise HarnessError(f"--n-boot must be at least 100, got {args.n_boot}")
    if args.report_only:
        if not args.study_id:
            raise HarnessError("--report-only needs --study-id")
        study = load_study(args.study_id)
    else:
        methods = args.methods
        if methods is None and args.study_id:
            methods = ",".join(load_study(args.study_id).state["methods"])
        if not methods:
            raise HarnessError("harness study needs --methods (e.g. base,dpo,mmedpo)")
        from harness.experiments.study.executors import ExecutorSpec

        executor = ExecutorSpec(args.executor, args.executor_options, args.max_parallel)
        if args.reference is None:  # resolved here, so config.yaml records the reference the study ran with
            from harness.methods import default_reference

            args.reference = default_reference()
        config = StudyConfig(methods=parse_methods(methods), seeds=_seeds(args), reference=args.reference,
                             run=run_config_from_args(args, options={}), pair_draw=args.pair_draw,
                             budget=args.budget, steps=args.steps, lr_rule=args.lr_rule,
                             lr_grid=_grid(args.lr_grid), val_split=args.val_split, val_limit=args.val_limit)
        try:
            study = run_study(config, study_id=args.study_id, executor=executor)
        except KeyboardInterrupt:
            raise HarnessError("interrupted: rerun with the same flags and --study-id to resume") from None
        from harness.cli.config_file import save_effective_config

        save_effective_config(args, study.folder, "study")  # beside study.json: reruns the study
    return study, report(study, args.store, n_boot=args.n_boot, correction=args.correction)
