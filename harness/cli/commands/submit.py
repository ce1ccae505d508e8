"""``harness submit FILE``: validate a results file and store its runs as pending leaderboard submissions.

Example::

    harness submit my_results.json
"""

from __future__ import annotations

import argparse

EXAMPLE = """examples:
  harness results --export mine.json       # a bare list of runs is accepted as well
  harness submit mine.json                 # validated, stored as pending
  harness leaderboard approve --all        # a maintainer publishes them
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="submit a results file to the leaderboard (stored as pending until approved)",
        description=__doc__.split("\n\n")[0],
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", help="a harness-results/1 JSON file (schema: docs/leaderboard.md)")
    parser.add_argument("--store", default=None, help="results database (default: $HARNESS_STORE or $HARNESS_HOME)")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from harness.results import ResultsStore
    from leaderboard.submit import submit_file

    outcome = submit_file(args.file, ResultsStore(args.store))
    for run_id in outcome.stored:
        print(f"pending: {run_id} (publish with 'harness leaderboard approve {run_id}')")
    for line in outcome.rejected:
        print(f"rejected: {line}")
    return 0 if outcome.stored else 2
