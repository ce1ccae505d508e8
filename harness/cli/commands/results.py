"""``harness results``: list and compare stored runs, one row per run and one column per task/metric; approve
and pin the baselines the regression gate compares against.

Example::

    harness results
    harness results --tasks vqa_rad --export comparison.md
    harness results approve 20250101-120000-abc123 && harness results pin 20250101-120000-abc123 --name release
"""

from __future__ import annotations

import argparse

from harness.cli.common import add_format_option, add_tasks_option, emit

EXAMPLE = """examples:
  harness results                                   # every run, every task/metric
  harness results --tasks vqa_rad --runs RUN1,RUN2  # compare two runs on one task
  harness results --export results.csv              # also .json or .md
  harness results approve RUN                       # RUN becomes an approved baseline (runs start as candidates)
  harness results pin RUN --name release            # harness regress --baseline release
  harness results baselines                         # approved runs and their pin names
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "results",
        help="list and compare stored runs; export CSV, JSON or markdown; approve and pin baselines",
        description=__doc__.split("\n\n")[0],
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_tasks_option(parser, help="tasks to show, a,b or a b (default: all)")
    parser.add_argument("--runs", default=None, help="comma-separated run ids or unique id prefixes (default: all)")
    parser.add_argument("--metrics", default=None, help="comma-separated metrics to show (default: all)")
    parser.add_argument("--status", default=None, help="only runs with this leaderboard status (approved, pending...)")
    parser.add_argument("--export", default=None, metavar="PATH", help="also write the comparison to .csv, .json or .md")
    _add_store(parser)
    add_format_option(parser)
    parser.set_defaults(func=handle)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    approve = actions.add_parser("approve", help="mark a run as an approved baseline for harness regress")
    approve.add_argument("run", metavar="RUN", help="run id or unique prefix")
    _add_store(approve, default=argparse.SUPPRESS)
    approve.set_defaults(func=handle_approve)
    pin = actions.add_parser("pin", help="name an approved run, so harness regress --baseline NAME finds it")
    pin.add_argument("run", metavar="RUN", help="run id or unique prefix (approved)")
    pin.add_argument("--name", required=True, help="the pin name (a name already pinned moves to RUN)")
    _add_store(pin, default=argparse.SUPPRESS)
    pin.set_defaults(func=handle_pin)
    baselines = actions.add_parser("baselines", help="list approved runs and their pin names")
    _add_store(baselines, default=argparse.SUPPRESS)
    add_format_option(baselines)
    baselines.set_defaults(func=handle_baselines)


def _add_store(parser: argparse.ArgumentParser, default: object = None) -> None:
    # an action's --store defaults to SUPPRESS, so `results --store X approve RUN` keeps X instead of the
    # action's default overwriting it
    parser.add_argument("--store", default=default, help="results database (default: $HARNESS_STORE or $HARNESS_HOME)")


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def check_names(kind: str, names: list[str] | None, known: set[str]) -> None:
    """An unknown name is an error with the closest known names (a typo must not show an empty table)."""
    import difflib

    from harness.core.errors import HarnessError

    for name in names or []:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise HarnessError(f"unknown {kind} '{name}'{hint}")


def handle(args: argparse.Namespace) -> int:
    from harness.metrics import METRICS
    from harness.results import ResultsStore
    from harness.results.compare import export, wide_rows
    from harness.tasks import TASKS

    store = ResultsStore(args.store)
    run_ids = _split(args.runs)
    if run_ids:
        run_ids = [store.get_run(r)["run_id"] for r in run_ids]  # prefixes resolve; unknown ids fail clearly
    everything = store.results()
    metrics = _split(args.metrics)
    check_names("task", args.tasks, set(TASKS.names()) | {r["task"] for r in everything})
    check_names("metric", metrics, set(METRICS.names()) | {r["metric"] for r in everything})
    results = store.results(run_ids=run_ids, tasks=args.tasks, status=args.status)
    if metrics:
        results = [r for r in results if r["metric"] in metrics]
    runs = store.runs(run_ids=run_ids, status=args.status)
    if args.export:
        fmt = export(args.export, runs, results)
        print(f"wrote {fmt} to {args.export}")
    emit(with_test_set(wide_rows(results, display=args.format == "table"), runs), args.format)
    return 0


def with_test_set(rows: list[dict], runs: list[dict]) -> list[dict]:
    """Each row with a ``test set`` column after its identity: ``full``, or ``partial (why)``."""
    from harness.results.compare import RUN_COLUMNS, partial_reason

    reasons = {r["run_id"]: partial_reason(r) for r in runs}
    shown = []
    for row in rows:
        why = reasons.get(row.get("run_id"), "")
        identity = {k: row[k] for k in RUN_COLUMNS if k in row}
        shown.append({**identity, "test set": f"partial ({why})" if why else "full",
                      **{k: v for k, v in row.items() if k not in identity}})
    return shown


def handle_approve(args: argparse.Namespace) -> int:
    from harness.results import ResultsStore

    run_id = ResultsStore(args.store).approve(args.run)
    print(f"approved {run_id}")
    return 0


def handle_pin(args: argparse.Namespace) -> int:
    from harness.results import ResultsStore

    run_id = ResultsStore(args.store).pin(args.run, args.name)
    print(f"pinned {args.name} -> {run_id}")
    return 0


def handle_baselines(args: argparse.Namespace) -> int:
    from harness.results import ResultsStore

    rows = [{"run_id": r["run_id"], "model": r["model"], "created_at": r["created_at"], "pins": r["pins"],
             "harness_version": r.get("harness_version"), "predictions_dir": r.get("predictions_dir")}
            for r in ResultsStore(args.store).baselines()]
    emit(rows, args.format)
    return 0
