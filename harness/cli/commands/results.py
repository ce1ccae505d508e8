"""``harness results``: list and compare stored runs, one row per run and one column per task/metric.

Example::

    harness results
    harness results --tasks vqa_rad --export comparison.md
"""

from __future__ import annotations

import argparse

from harness.cli.common import add_format_option, emit

EXAMPLE = """examples:
  harness results                                   # every run, every task/metric
  harness results --tasks vqa_rad --runs RUN1,RUN2  # compare two runs on one task
  harness results --export results.csv              # also .json or .md
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "results",
        help="list and compare stored runs; export CSV, JSON or markdown",
        description=__doc__.split("\n\n")[0],
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tasks", default=None, help="comma-separated tasks to show (default: all)")
    parser.add_argument("--runs", default=None, help="comma-separated run ids or unique id prefixes (default: all)")
    parser.add_argument("--metrics", default=None, help="comma-separated metrics to show (default: all)")
    parser.add_argument("--status", default=None, help="only runs with this status (approved, pending...)")
    parser.add_argument("--export", default=None, metavar="PATH", help="also write the comparison to .csv, .json or .md")
    parser.add_argument("--store", default=None, help="results database (default: $HARNESS_STORE or $HARNESS_HOME)")
    add_format_option(parser)
    parser.set_defaults(func=handle)


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def handle(args: argparse.Namespace) -> int:
    from harness.results import ResultsStore
    from harness.results.compare import export, wide_rows

    store = ResultsStore(args.store)
    run_ids = _split(args.runs)
    if run_ids:
        run_ids = [store.get_run(r)["run_id"] for r in run_ids]  # prefixes resolve; unknown ids fail clearly
    results = store.results(run_ids=run_ids, tasks=_split(args.tasks), status=args.status)
    metrics = _split(args.metrics)
    if metrics:
        results = [r for r in results if r["metric"] in metrics]
    if args.export:
        runs = store.runs(run_ids=run_ids, status=args.status)
        fmt = export(args.export, runs, results, statuses=None if args.status else ("approved",))
        print(f"wrote {fmt} to {args.export}")
    emit(wide_rows(results, display=args.format == "table"), args.format)
    return 0
