"""``harness probes build``: write a POPE-style probe set (present and absent findings, balanced) from any task
whose rows carry labelled findings (a ``boxes`` column: the synthetic suite, SLAKE's detection boxes).

Example::

    harness probes build --task synth_vqa --out probes/synth_pope.jsonl
    harness probes build --task slake --data-dir data/ --out probes/slake_pope.jsonl --settings adversarial
"""

from __future__ import annotations

import argparse

EXAMPLE = """examples:
  harness probes build --task synth_vqa --out probes/synth_pope.jsonl
  harness probes build --task slake --data-dir data/ --out slake_pope.jsonl --per-image 3 --settings random,adversarial
The registered tasks synth_probe and slake_probe build the same sets at load time, so
`harness eval --tasks synth_probe` evaluates them and `harness regress` gates pope_accuracy with pope_yes_bias (a yes-to-everything model cannot pass).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from harness.cli.common import add_data_dir_option
    from harness.regress.probes import SETTINGS

    parser = subparsers.add_parser("probes", help="POPE-style probe sets of present and absent findings")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="write a balanced probe set (JSON Lines) from a labelled task",
                               description=__doc__.split("\n\n")[0].split(": ", 1)[1], epilog=EXAMPLE,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    build.add_argument("--task", required=True, help="a task with a 'boxes' column (synth_vqa, slake, ...)")
    build.add_argument("--split", default="test", help="split of the task (default: test)")
    build.add_argument("--out", required=True, help="JSON Lines file to write (one probe per line)")
    build.add_argument("--per-image", type=int, default=3, help="present findings asked per image (default: 3)")
    build.add_argument("--settings", default=",".join(SETTINGS),
                       help=f"negative samplings, comma-separated (default: {','.join(SETTINGS)})")
    build.add_argument("--limit", type=int, default=None, help="probe only the first N rows of the task")
    build.add_argument("--seed", type=int, default=0, help="seed of the random negatives (default: 0)")
    add_data_dir_option(build)
    build.set_defaults(func=handle_build)


def handle_build(args: argparse.Namespace) -> int:
    import json
    from collections import Counter

    from harness.errors import HarnessError
    from harness.io import atomic_write
    from harness.regress.probes import build_probes, source_rows

    if args.per_image < 1:
        raise HarnessError(f"--per-image must be at least 1, got {args.per_image}")
    if args.limit is not None and args.limit < 1:  # 0 is not "no limit": leave --limit out for every row
        raise HarnessError(f"--limit must be at least 1, got {args.limit}")
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    probes = build_probes(source_rows(args.task, args.split, data_dir=args.data_dir, limit=args.limit),
                          per_image=args.per_image, seed=args.seed, settings=settings)
    with atomic_write(args.out) as handle:
        for probe in probes:
            handle.write(json.dumps(probe, ensure_ascii=False) + "\n")
    counts = Counter((p["probe_setting"], p["answer"]) for p in probes)
    images = len({p["source_id"] for p in probes})
    summary = ", ".join(f"{s} {counts[(s, 'yes')]} yes / {counts[(s, 'no')]} no" for s in settings)
    print(f"wrote {len(probes)} probes on {images} images to {args.out}: {summary}")
    return 0
