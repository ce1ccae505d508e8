"""``harness regress``: fail (exit 1) when a candidate's per-sample results regress against a baseline.

Example::

    harness regress --baseline 20250101-120000-abc123 --candidate runs/new/ \\
        --metrics closed_accuracy --max-drop 0.02 --report-md regress.md --junit regress.xml
"""

from __future__ import annotations

import argparse
import dataclasses


def register(subparsers: argparse._SubParsersAction) -> None:
    from harness.cli.common import add_format_option
    from harness.regress.compare import CORRECTIONS, RegressConfig

    defaults = {f.name: f for f in dataclasses.fields(RegressConfig)}
    parser = subparsers.add_parser(
        "regress",
        help="paired regression test of a candidate run against a baseline (exit 1 on a regression)",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog="example: harness regress --baseline RUN_A --candidate RUN_B --max-drop 0.02 --junit regress.xml",
    )
    parser.add_argument("--baseline", required=True, help="run id in the store, run directory or predictions JSONL")
    parser.add_argument("--candidate", required=True, help="run id in the store, run directory or predictions JSONL")
    parser.add_argument("--metrics", nargs="+", default=None, help=defaults["metrics"].metadata["help"])
    parser.add_argument("--tasks", nargs="+", default=None, help=defaults["tasks"].metadata["help"])
    parser.add_argument("--max-drop", type=float, default=0.0, help=defaults["max_drop"].metadata["help"])
    parser.add_argument("--alpha", type=float, default=0.05, help=defaults["alpha"].metadata["help"])
    parser.add_argument("--correction", choices=CORRECTIONS, default="holm",
                        help=defaults["correction"].metadata["help"] + " (default holm)")
    parser.add_argument("--n-boot", type=int, default=10000, help=defaults["n_boot"].metadata["help"])
    parser.add_argument("--seed", type=int, default=0, help=defaults["seed"].metadata["help"])
    parser.add_argument("--report-md", default=None, help="write a markdown report here")
    parser.add_argument("--junit", default=None, help="write a JUnit XML report here (one testcase per task/metric)")
    parser.add_argument("--store", default=None, help="results database (default: $HARNESS_STORE or $HARNESS_HOME)")
    add_format_option(parser)
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    import sys

    from harness.cli.common import emit
    from harness.regress.compare import RegressConfig, compare_sources
    from harness.regress.report import summary_rows, write_reports

    config = RegressConfig(metrics=args.metrics, tasks=args.tasks, alpha=args.alpha, max_drop=args.max_drop,
                           correction=args.correction, n_boot=args.n_boot, seed=args.seed)
    comparison = compare_sources(args.baseline, args.candidate, config, store=args.store)
    write_reports(comparison, markdown_path=args.report_md, junit_path=args.junit)
    emit(summary_rows(comparison), args.format)
    for warning in comparison.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if comparison.regressed:
        names = ", ".join(f"{r.task}/{r.metric}" for r in comparison.regressed)
        print(f"REGRESSION: {names}", file=sys.stderr)
        return 1
    return 0
