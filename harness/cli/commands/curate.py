"""``harness curate``: build and cache a method's preference pairs for a task's training split.

Examples::

  harness curate --method mmedpo --task synth_vqa --model tiny         # the paper: the model's samples, judged
  harness curate --method mmedpo --task synth_vqa --option text_generator=rules   # no model: the verified injector
  harness curate --method dpo --task synth_report --model tiny         # the default text pairs (sample-and-judge)
  harness curate --method dpo --task synth_report                      # no model: the injector alone
  harness curate --method mmedpo --task vqa_rad --model tiny --option localizer=saliency
  harness curate --method mmedpo --task slake --model llava:/models/llava-med \\
      --option judges=openai:gpt-4o --option noise=release --option weighting=release
  harness curate --method mmedpo --task synth_vqa --model tiny --option ablation=no-visual,no-weights

Each curation writes manifest.json beside pairs.jsonl: the pairs' error-type mix next to the base model's own
(its greedy answers on the same items), the denial rule, and every departure from the paper (behaviour).
"""

from __future__ import annotations

import argparse
import logging

from harness.cli.common import (
    add_data_dir_option,
    add_format_option,
    add_progress_options,
    add_task_option_option,
    emit,
)
from harness.cli.config_file import add_config_option
from harness.core.errors import HarnessError
from harness.core.io import read_json

log = logging.getLogger(__name__)

EPILOG = __doc__.split("Examples::", 1)[1]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "curate", help="build and cache a method's preference pairs", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build a method's preference pairs for a task (resumable; cached per data, model and settings).",
    )
    add_config_option(parser)
    parser.add_argument("--method", required=True, help="a method with a pair builder (e.g. mmedpo, povid)")
    parser.add_argument("--task", default=None, help="task whose split is curated (required unless --list-options)")
    add_task_option_option(parser)
    parser.add_argument("--split", default="train", help="split to curate (default: train)")
    parser.add_argument("--model", default=None,
                        help="target model spec (tiny, a folder, llava:<path>...): needed to sample answers "
                             "(sample-and-judge, the default text pairs of every method) or for the saliency "
                             "localizer")
    parser.add_argument("--text-pairs", default="auto", choices=("auto", "sample-and-judge", "injector"),
                        help="methods without a pair builder (dpo, ipo...): 'sample-and-judge' (the paper: the "
                             "model's own samples judged against the case; needs --model), 'injector' (the "
                             "verified injector alone) or 'auto' (default: sample-and-judge with --model, as "
                             "harness run does, else injector). MMedPO's own option is --option text_generator")
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

    from harness.core.options import parse_key_values
    from harness.core.paths import harness_home
    from harness.methods import PairContext, get_method

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
    from harness.cli.common import task_options_from_args
    from harness.tasks import get_task
    from harness.tasks.task_options import task_options

    with task_options(task_options_from_args(args, [args.task])):  # the task carries them: its identity too
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
    else:  # what `harness run` trains such a method on: the default text pairs
        from harness.core.io import write_json
        from harness.curation.preferences import write_pairs
        from harness.curation.textpairs import default_text_pairs

        mode = args.text_pairs if args.text_pairs != "auto" else "sample-and-judge" if model else "injector"
        if args.text_pairs == "auto" and model is None:
            log.info("curate: no --model, so the default text pairs come from the verified injector "
                     "(harness run samples the base model: --text-pairs sample-and-judge)")
        pairs = default_text_pairs(task, samples, args.seed, mode=mode, model=model)
        write_json(output / "manifest.json", pairs.manifest)
        write_pairs(output / "pairs.jsonl", pairs)
    from harness.cli.config_file import save_effective_config

    save_effective_config(args, output, "curate")  # beside the pairs: reruns this curation
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
    if not builder:
        manifests = [pairs.manifest]
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
    quartiles, median, max, mean), pairs per source, items skipped per reason, the error-type mix of the
    rejected texts next to the base's greedy answers (per case group), and the denial rule. Builders without
    one print none."""
    from harness.curation.errortypes import ERROR_TYPES

    details: dict[str, list[dict]] = {"weights": [], "sources": [], "skipped": [], "error_mix": [],
                                      "denial_rule": []}
    for manifest in manifests:
        mix = manifest.get("error_mix") or {}
        for who in ("pairs", "base"):
            for group in ("lesion", "normal", "unlabelled"):
                counts = (mix.get(who) or {}).get(group)
                if counts is not None:
                    details["error_mix"].append({"texts": "rejected" if who == "pairs" else "base greedy",
                                                 "cases": group, "n": mix[who]["n"][group],
                                                 **{t: counts.get(t, 0) for t in ERROR_TYPES}})
        rule = manifest.get("denial_rule")
        if rule and rule.get("floor") is not None:
            details["denial_rule"].append({k: rule.get(k) for k in ("base_denial_share", "pair_denial_share",
                                                                     "floor", "holds", "swapped")})
        for kind, stats in (manifest.get("weights") or {}).items():
            if stats:
                details["weights"].append({"kind": kind, **stats})
        for kind, counts in (manifest.get("sources") or {}).items():
            if isinstance(counts, dict):
                details["sources"] += [{"kind": kind, "source": s, "pairs": n} for s, n in counts.items()]
            else:  # the default pairs' manifest: text pairs per source
                details["sources"].append({"kind": "text", "source": kind, "pairs": counts})
        for kind, counts in (manifest.get("skipped") or {}).items():
            details["skipped"] += [{"kind": kind, "reason": r, "items": n} for r, n in counts.items()]
    return details
