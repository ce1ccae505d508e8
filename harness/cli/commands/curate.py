"""``harness curate``: build and cache a method's preference pairs for a task's training split.

Examples::

  harness curate --method mmedpo --task synth_vqa                      # offline: rules + ground-truth masks
  harness curate --method mmedpo --task vqa_rad --model tiny --option localizer=saliency
  harness curate --method mmedpo --task slake --model llava:/models/llava-med \\
      --option judges=openai:gpt-4o --option noise=gaussian-replace --option weighting=release
  harness curate --method mmedpo --task synth_vqa --option ablation=no-visual,no-weights
"""

from __future__ import annotations

import argparse

from harness.cli.common import add_data_dir_option, add_format_option, emit
from harness.errors import HarnessError

EPILOG = __doc__.split("Examples::", 1)[1]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "curate", help="build and cache a method's preference pairs", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build a method's preference pairs for a task (resumable; cached per data, model and settings).",
    )
    parser.add_argument("--method", required=True, help="a method with a pair builder (e.g. mmedpo, povid)")
    parser.add_argument("--task", required=True, help="task whose split is curated")
    parser.add_argument("--split", default="train", help="split to curate (default: train)")
    parser.add_argument("--model", default=None,
                        help="target model spec (tiny, a folder, llava:<path>...): needed to sample answers "
                             "(sample-and-judge) or for the saliency localizer")
    parser.add_argument("--output-dir", default=None, help="folder for pairs and images (default: $HARNESS_HOME/pairs/<task>)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a curation option (repeatable); see docs/mmedpo.md or --list-options")
    parser.add_argument("--seed", type=int, default=0, help="seed of the hallucinations and the noise")
    parser.add_argument("--device", default=None, help="torch device for a local model")
    parser.add_argument("--list-options", action="store_true", help="list the method's curation options and exit")
    add_data_dir_option(parser)
    add_format_option(parser)
    parser.set_defaults(func=handle)


def _options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise HarnessError(f"--option expects KEY=VALUE, got {item!r}")
        options[key.strip()] = value.strip()
    return options


def handle(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.methods import PairContext, get_method
    from harness.paths import harness_home

    if args.list_options:
        if args.method != "mmedpo":
            raise HarnessError("--list-options is available for mmedpo")
        from mmedpo.config import ABLATIONS, CurationConfig

        rows = [{"option": k, "help": v} for k, v in CurationConfig.help().items()]
        rows.append({"option": "ablation", "help": f"comma-separated: {', '.join(ABLATIONS)}"})
        emit(rows, args.format)
        return 0
    method = get_method(args.method)()
    if not method.has_pair_builder():
        raise HarnessError(f"method '{args.method}' has no pair builder (it trains on pairs you give it)")
    from harness.tasks import get_task

    task = get_task(args.task)
    samples = task.load(args.split, data_dir=args.data_dir)
    model = None
    if args.model:
        from harness.models import load_model

        model = load_model(args.model, device=args.device)
    output = Path(args.output_dir) if args.output_dir else harness_home() / "pairs" / args.task
    context = PairContext(task=task, samples=samples, model=model, output_dir=output, seed=args.seed,
                          options=_options(args.option))
    pairs = method.build_pairs(context)
    kinds = {}
    for pair in pairs:
        kinds[pair.kind] = kinds.get(pair.kind, 0) + 1
    folders = sorted({Path(p.image).parts[0] for p in pairs if Path(p.image).parts})
    row = {"method": args.method, "task": args.task, "split": args.split, "pairs": len(pairs), **kinds,
           "image_root": str(output), "cache": ",".join(folders)}
    if pairs:
        weights = [p.weight for p in pairs]
        row.update(weight_min=min(weights), weight_max=max(weights))
    emit([row], args.format)
    return 0
