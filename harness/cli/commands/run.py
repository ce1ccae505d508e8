"""``harness run``: the whole pipeline for one method, ending in a comparison table.

Examples::

  harness run --method mmedpo                          # the embedded default: tiny model, synthetic suite
  harness run --method dpo                             # same base model and tasks: the table shows both
  harness run --method mmedpo --option ablation=no-visual --option noise=global
  harness run --method povid --tasks vqa_rad --data-dir ../shared/data --model llava:/models/llava-med-hf
  harness run --method mmedpo --run-id 20261125-120000-abc123   # resume an interrupted run
"""

from __future__ import annotations

import argparse
import dataclasses

from harness.cli.common import add_format_option, emit
from harness.errors import HarnessError

EPILOG = __doc__.split("Examples::", 1)[1]


def register(subparsers: argparse._SubParsersAction) -> None:
    from harness.pipeline import RunConfig

    parser = subparsers.add_parser(
        "run", help="pairs -> training -> evaluation -> comparison table, for one method",
        description="Run one method end to end on a base model and tasks, store the results, and print the "
                    "base model, this run and earlier runs side by side.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for f in dataclasses.fields(RunConfig):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} (default: {_show(f.default)})"
        if f.name == "options":
            parser.add_argument("--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
                                help="a method option (repeatable), e.g. ablation=no-visual, beta=0.2")
        elif f.name == "tasks":
            parser.add_argument(flag, default=",".join(f.default), help=help_text + "; comma-separated")
        elif f.type in ("bool",) or isinstance(f.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text)
        else:
            kind = {int: int, float: float}.get(type(f.default), str)
            if f.name in ("train_limit", "eval_limit"):
                kind = _limit
            parser.add_argument(flag, type=kind, default=f.default, help=help_text)
    parser.add_argument("--run-id", default=None, help="resume (or name) this run")
    add_format_option(parser)
    parser.set_defaults(func=handle)


def _show(value) -> str:
    return ",".join(value) if isinstance(value, tuple) else str(value)


def _limit(value: str) -> int | None:
    if value.lower() in ("none", "all", "0"):
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'all', got {value!r}") from None


def handle(args: argparse.Namespace) -> int:
    from harness.pipeline import RunConfig, run

    options = {}
    for item in args.options:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HarnessError(f"--option expects KEY=VALUE, got {item!r}")
        options[key.strip()] = value.strip()
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)}
    values["options"] = options
    values["tasks"] = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    config = RunConfig(**values)
    try:
        outcome = run(config, run_id=args.run_id)
    except KeyboardInterrupt:
        raise HarnessError("interrupted: rerun with the same --run-id to resume") from None
    if args.format == "json":
        emit(outcome.table, "json")
    else:
        print(f"\nrun {outcome.run_id}: {config.method} on {config.model}, {outcome.pairs} pairs "
              f"(base evaluation: run {outcome.base_run_id})")
        columns = [c for c in outcome.table[0] if c != "run_id"] if outcome.table else None
        emit(outcome.table, "table", columns)
        print("values x100 with 95% bootstrap intervals; hallucination_rate: lower is better")
    return 0
