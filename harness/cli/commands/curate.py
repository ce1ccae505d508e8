"""``harness curate``: build and cache a method's preference pairs for a task's training split.

Examples::

  harness curate --method mmedpo --task synth_vqa                      # offline: rules + ground-truth masks
  harness curate --method dpo --task synth_report                      # a method without a builder: the default text pairs
  harness curate --method mmedpo --task vqa_rad --model tiny --option localizer=saliency
  harness curate --method mmedpo --task synth_vqa --model tiny --option text_generator=sample-and-judge
  harness curate --method mmedpo --task slake --model llava:/models/llava-med \\
      --option judges=openai:gpt-4o --option noise=gaussian-replace --option weighting=release
  harness curate --method mmedpo --task synth_vqa --option ablation=no-visual,no-weights
"""

from __future__ import annotations

import argparse

from harness.cli.common import add_data_dir_option, add_format_option, add_progress_options, emit
from harness.errors import HarnessError
from harness.io import read_json

EPILOG = __doc__.split("Examples::", 1)[1]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "curate", help="build and cache a method's preference pairs", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build a method's preference pairs for a task (resumable; cached per data, model and settings).",
    )
    parser.add_argument("--method", required=True, help="a method with a pair builder (e.g. mmedpo, povid)")
    parser.add_argument("--task", default=None, help="task whose split is curated (required unless --list-options)")
    parser.add_argument("--split", default="train", help="split to curate (default: train)")
    parser.add_argument("--model", default=None,
                        help="target model spec (tiny, a folder, llava:<path>...): needed to sample answers "
                             "(sample-and-judge) or for the saliency localizer")
    parser.add_argument("--output-dir", default=None, help="folder for pairs and images (default: $HARNESS_HOME/pairs/<task>)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a pair-builder option (repeatable); --list-options lists the method's options")
    parser.add_argument("--seed", type=int, default=0, help="seed of the hallucinations and the noise")
    parser.add_argument("--device", default=None, help="torch device for a local model")
    parser.add_argument("--list-options", action="store_true",
                        help="list the method's pair-builder options (name, default, help) and exit")
    add_data_dir_option(parser)
    add_format_option(parser)
    add_progress_options(parser)
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.methods import PairContext, get_method
    from harness.options import parse_key_values
    from harness.paths import harness_home

    method_cls = get_method(args.method)
    builder = method_cls.has_pair_builder()
    if args.list_options and not builder:
        raise HarnessError(f"method '{args.method}' has no pair builder, so no builder options (it trains on "
                           "the default text pairs, or on pairs you give it)")
    if args.list_options:
        emit([{"option": o["name"], "default": o["default"], "choices": o["choices"], "help": o["help"]}
              for o in method_cls.builder_options_help()], args.format)
        return 0
    if not args.task:
        raise HarnessError("harness curate needs --task (or --list-options)")
    options = parse_key_values(args.option)
    method_cls.parse_builder_options(options)  # a mistyped key fails here, before any loading
    method = method_cls()
    from harness.tasks import get_task

    task = get_task(args.task)
    samples = task.load(args.split, data_dir=args.data_dir)
    model = None
    if args.model:
        from harness.models import load_model

        model = load_model(args.model, device=args.device)
    output = Path(args.output_dir) if args.output_dir else harness_home() / "pairs" / args.task
    context = PairContext(task=task, samples=samples, model=model, output_dir=output, seed=args.seed,
                          options=options)
    if builder:
        pairs = method.build_pairs(context)
    else:  # what `harness run` trains such a method on: the verified default text pairs
        from harness.preferences import write_pairs
        from harness.textpairs import default_text_pairs

        pairs = default_text_pairs(task, samples, args.seed)
        write_pairs(output / "pairs.jsonl", pairs)
    kinds = {}
    for pair in pairs:
        kinds[pair.kind] = kinds.get(pair.kind, 0) + 1
    folders = sorted({Path(p.image).parts[0] for p in pairs if Path(p.image).parts}) if builder else []
    row = {"method": args.method, "task": args.task, "split": args.split, "pairs": len(pairs), **kinds,
           "image_root": str(output), "cache": ",".join(folders)}
    if not builder:
        row["skipped"] = getattr(pairs, "skipped", 0)  # items with no verified hallucination
    if pairs:
        weights = [p.weight for p in pairs]
        row.update(weight_min=min(weights), weight_max=max(weights))
    manifests = [read_json(output / f / "manifest.json") for f in folders if (output / f / "manifest.json").is_file()]
    details = _manifest_rows(manifests)
    if args.format == "json":
        row.update({name: rows for name, rows in details.items() if rows})
        emit([row], args.format)
        return 0
    emit([row], args.format)
    for name, rows in details.items():
        if rows:
            print(f"\n{name}:")
            emit(rows, args.format)
    return 0


def _manifest_rows(manifests: list[dict]) -> dict[str, list[dict]]:
    """What a builder's ``manifest.json`` says about its pairs: weight distribution per pair kind (min,
    quartiles, median, max, mean), pairs per source, items skipped per reason. Builders without one print none."""
    details: dict[str, list[dict]] = {"weights": [], "sources": [], "skipped": []}
    for manifest in manifests:
        for kind, stats in (manifest.get("weights") or {}).items():
            if stats:
                details["weights"].append({"kind": kind, **stats})
        for kind, counts in (manifest.get("sources") or {}).items():
            details["sources"] += [{"kind": kind, "source": s, "pairs": n} for s, n in counts.items()]
        for kind, counts in (manifest.get("skipped") or {}).items():
            details["skipped"] += [{"kind": kind, "reason": r, "items": n} for r, n in counts.items()]
    return details
