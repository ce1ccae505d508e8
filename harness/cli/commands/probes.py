"""``harness probes build``: write a POPE-style probe set (present and absent findings, balanced per region) from
any task whose rows carry labelled findings (a ``boxes`` column: the synthetic suite, SLAKE's detection boxes).

Absent findings are drawn from the image's own body region and modality only, so no probe can be answered
from the body part; the summary reports the balance per region, the labels of each region, the share of
negatives from another region (0) and what was dropped.

Example::

    harness probes build --task synth_vqa --out probes/synth_pope.jsonl
    harness probes build --task slake --data-dir data/ --out probes/slake_pope.jsonl --settings adversarial
"""

from __future__ import annotations

import argparse

EXAMPLE = """examples:
  harness probes build --task synth_vqa --out probes/synth_pope.jsonl
  harness probes build --task slake --data-dir data/ --out slake_pope.jsonl --per-image 3 --settings random,adversarial
  harness probes build --task slake --data-dir data/ --out slake_pope.jsonl --format json > slake_pope.summary.json
The registered tasks synth_probe and slake_probe build the same sets at load time, so
`harness eval --tasks synth_probe` evaluates them and `harness regress` gates pope_accuracy with pope_yes_bias (a yes-to-everything model cannot pass).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from harness.cli.common import add_data_dir_option, add_format_option, add_task_option_option
    from harness.regress.probes import SETTINGS

    parser = subparsers.add_parser("probes", help="POPE-style probe sets of present and absent findings")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="write a balanced probe set (JSON Lines) from a labelled task",
                               description=__doc__.split("\n\n")[0].split(": ", 1)[1], epilog=EXAMPLE,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    build.add_argument("--task", required=True, help="a task with a 'boxes' column (synth_vqa, slake, ...)")
    add_task_option_option(build)
    build.add_argument("--split", default="test", help="split of the task (default: test)")
    build.add_argument("--out", required=True, help="JSON Lines file to write (one probe per line)")
    build.add_argument("--per-image", type=int, default=3, help="present findings asked per image (default: 3)")
    build.add_argument("--settings", default=",".join(SETTINGS),
                       help=f"negative samplings, comma-separated (default: {','.join(SETTINGS)})")
    build.add_argument("--max-per-label", type=int, default=None,
                       help="most 'yes' probes per label of a region in each setting (default: twice the median "
                            "over the set's region labels)")
    build.add_argument("--limit", type=int, default=None, help="probe only the first N rows of the task")
    build.add_argument("--seed", type=int, default=0, help="seed of the random negatives and image order (default: 0)")
    add_data_dir_option(build)
    add_format_option(build)
    build.set_defaults(func=handle_build)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def summary_text(summary: dict, out: str) -> str:
    """The build's report as text: totals, the leak check, the balance and labels per region, what was dropped."""
    from harness.cli.common import format_table

    settings = summary["settings"]
    totals = {s: sum(r["yes"][s] for r in summary["regions"].values()) for s in settings}
    lines = [f"wrote {summary['probes']} probes (probe set {summary['version']}, content "
             f"{summary['content_sha256'][:12]}) on {summary['images']} images to {out}: "
             + ", ".join(f"{s} {totals[s]} yes / {totals[s]} no" for s in settings)]
    leaks = summary["negatives_from_another_region"]
    lines.append("negatives from another region: " + ", ".join(
        f"{s} {leaks[s]} ({_pct(summary['negatives_from_another_region_share'][s])})" for s in settings))
    lines.append("label-only accuracy (region and label known, no image; 50% = the image is needed): " + ", ".join(
        f"{s} {_pct(summary['label_only_accuracy'][s])}" for s in settings))
    lines.append(f"at most {summary['max_per_label']} yes probes per label of a region and setting")
    slash = "/".join
    rows, label_rows = [], []
    for name, region in summary["regions"].items():
        rows.append({"region": name, "images": region["images"], "probed": region["probed_images"],
                     f"yes / no ({slash(settings)})": "  ".join(f"{region['yes'][s]}/{region['no'][s]}"
                                                              for s in settings)})
        for label, entry in region["labels"].items():
            label_rows.append({"region": name, "label": label, "images": entry["images"],
                               f"yes ({slash(settings)})": slash(str(entry["yes"][s]) for s in settings),
                               f"no ({slash(settings)})": slash(str(entry["no"][s]) for s in settings)})
    lines += ["", format_table(rows), "", format_table(label_rows), ""]
    dropped = summary["dropped"]
    lost = {reason: sum(by_region.values()) for reason, by_region in dropped["yes_probes"].items()}
    no_candidate = dropped["images_without_a_candidate_negative"]
    where = f" ({', '.join(f'{r} {n}' for r, n in no_candidate.items())})" if no_candidate else ""
    lines.append(f"dropped: {dropped['images_without_findings']} images without findings; "
                 f"{sum(no_candidate.values())} images whose region has no finding they lack{where}; "
                 f"yes probes, each with its no probes: {lost['no_candidate_negative']} without a candidate negative, "
                 f"{lost['fewer_candidates_than_findings']} beyond the region's candidates, "
                 f"{lost['label_cap']} over the label cap")
    return "\n".join(line.rstrip() for line in "\n".join(lines).splitlines())


def handle_build(args: argparse.Namespace) -> int:
    import json

    from harness.core.errors import HarnessError
    from harness.core.io import atomic_write
    from harness.regress.probes import build_probe_set, source_rows

    if args.per_image < 1:
        raise HarnessError(f"--per-image must be at least 1, got {args.per_image}")
    if args.limit is not None and args.limit < 1:  # 0 is not "no limit": leave --limit out for every row
        raise HarnessError(f"--limit must be at least 1, got {args.limit}")
    if args.max_per_label is not None and args.max_per_label < 1:
        raise HarnessError(f"--max-per-label must be at least 1, got {args.max_per_label}")
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    from harness.cli.common import task_options_from_args
    from harness.tasks.task_options import task_options

    with task_options(task_options_from_args(args, [args.task])):
        rows = source_rows(args.task, args.split, data_dir=args.data_dir, limit=args.limit)
    probe_set = build_probe_set(rows,
                                per_image=args.per_image, seed=args.seed, settings=settings,
                                max_per_label=args.max_per_label)
    with atomic_write(args.out) as handle:
        for probe in probe_set.probes:
            handle.write(json.dumps(probe, ensure_ascii=False) + "\n")
    summary = probe_set.summary()
    if args.format == "json":
        print(json.dumps({"task": args.task, "split": args.split, "out": args.out, **summary}, indent=2))
    else:
        print(summary_text(summary, args.out))
    return 0
