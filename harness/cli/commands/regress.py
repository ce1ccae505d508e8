"""``harness regress``: the factuality gate: exit 1 when a candidate regresses against a baseline, 2 when the
two runs are not comparable.

Example::

    harness results pin 20250101-120000-abc123 --name release     # after harness results approve
    harness regress --baseline release --candidate runs/new/ --max-drop 2 --report-md regress.md --junit regress.xml
"""

from __future__ import annotations

import argparse
import dataclasses

EXAMPLE = """examples:
  harness regress --baseline release --candidate RUN_B                  # the default headline gate
  harness regress --baseline release --candidate RUN_B --tasks synth_vqa,synth_probe --max-drop 2
  harness regress --baseline RUN_A --candidate RUN_B --allow-diff token_budgets --format json
a gated metric fails when its 95% interval reaches a drop beyond --max-drop (non-inferiority)
exit status: 0 PASS, 1 REGRESSION, 2 not comparable, bad input or an error (one line on stderr; reports written)
"""


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    from harness.cli.common import add_format_option, add_tasks_option
    from harness.regress.compare import CORRECTIONS, RegressConfig

    defaults = {f.name: f for f in dataclasses.fields(RegressConfig)}
    parser = subparsers.add_parser(
        "regress",
        help="paired factuality gate of a candidate run against a baseline (exit 1 regression, 2 not comparable)",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--baseline", required=True,
                        help="pinned baseline name, run id, run directory or predictions JSONL")
    parser.add_argument("--candidate", required=True, help="run id, run directory or predictions JSONL")
    parser.add_argument("--metrics", nargs="+", action=_Flatten, default=None, metavar="METRIC",
                        help=defaults["metrics"].metadata["help"])
    add_tasks_option(parser, help=defaults["tasks"].metadata["help"] + "; a,b or a b")
    parser.add_argument("--max-drop", type=float, default=0.0, help=defaults["max_drop"].metadata["help"])
    parser.add_argument("--alpha", type=float, default=0.05, help=defaults["alpha"].metadata["help"])
    parser.add_argument("--correction", choices=CORRECTIONS, default="holm",
                        help=defaults["correction"].metadata["help"] + " (default holm)")
    parser.add_argument("--n-boot", type=int, default=10000, help=defaults["n_boot"].metadata["help"])
    parser.add_argument("--seed", type=int, default=0, help=defaults["seed"].metadata["help"])
    parser.add_argument("--allow-partial", action="store_true", help=defaults["allow_partial"].metadata["help"])
    parser.add_argument("--allow-diff", type=_split, default=[], metavar="KEY,...",
                        help=defaults["allow_diff"].metadata["help"])
    parser.add_argument("--report-md", default=None, help="write a markdown report here")
    parser.add_argument("--junit", default=None, help="write a JUnit XML report here (one testcase per gated metric)")
    parser.add_argument("--store", default=None, help="results database (default: $HARNESS_STORE or $HARNESS_HOME)")
    add_format_option(parser)
    parser.set_defaults(func=handle)


class _Flatten(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        names = list(getattr(namespace, self.dest, None) or [])
        for value in values:
            names.extend(_split(value))
        setattr(namespace, self.dest, list(dict.fromkeys(names)))


def handle(args: argparse.Namespace) -> int:
    import sys

    from harness.cli.common import emit, print_json, stdout_for_data
    from harness.core.errors import HarnessError
    from harness.regress.compare import RegressConfig, compare_sources
    from harness.regress.report import max_drop_warnings, summary_rows, write_refusal, write_reports

    with stdout_for_data(args.format == "json"):
        try:
            config = RegressConfig(metrics=args.metrics, tasks=args.tasks, alpha=args.alpha, max_drop=args.max_drop,
                                   correction=args.correction, n_boot=args.n_boot, seed=args.seed,
                                   allow_partial=args.allow_partial, allow_diff=tuple(args.allow_diff))
            comparison = compare_sources(args.baseline, args.candidate, config, store=args.store)
            write_reports(comparison, markdown_path=args.report_md, junit_path=args.junit)
        except HarnessError as exc:
            write_refusal(str(exc), markdown_path=args.report_md, junit_path=args.junit)  # the CI report step shows it
            raise
        except Exception as exc:  # a bug in the gate still decides nothing, in one line, with both reports written
            message = f"the gate failed: {type(exc).__name__}: {exc}"
            write_refusal(message, markdown_path=args.report_md, junit_path=args.junit, kind="error")
            raise HarnessError(message) from exc
    for warning in comparison.warnings + max_drop_warnings(comparison):
        print(f"warning: {warning}", file=sys.stderr)
    if args.format == "json":
        print_json(comparison.to_json())
    else:
        emit(summary_rows(comparison), "table")
        print(comparison.verdict_line())
    return 1 if comparison.regressed else 0
