"""``harness import lm-eval RESULTS.json``: record an lm-eval run (and its logged samples) in the results store.

Example::

    lm_eval ... --output_path out/ --log_samples
    harness import lm-eval out/<model>/results_<timestamp>.json --model tiny-sft
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("import", help="import results of other tools (lm-eval) into the results store")
    sources = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    lm = sources.add_parser("lm-eval", help="record an lm-eval results JSON (samples too, when logged)",
                            epilog="example: harness import lm-eval out/model/results_2025-01-01T00-00-00.json")
    lm.add_argument("results", metavar="RESULTS.json", help="the results_*.json lm-eval wrote")
    lm.add_argument("--model", default=None, help="model name to record (default: from the results file)")
    lm.add_argument("--method", default=None, help="training method to record with the run")
    lm.add_argument("--base-model", default=None, help="base model to record with the run")
    lm.add_argument("--store", default=None, help="results database (default: $HARNESS_STORE or $HARNESS_HOME)")
    lm.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from harness.lmeval.importer import import_lm_eval

    run_id = import_lm_eval(args.results, store=args.store, model=args.model, method=args.method,
                            base_model=args.base_model)
    print(f"imported as pending ('harness leaderboard approve' puts it on the board): run {run_id}")
    return 0
