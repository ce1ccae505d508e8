"""``harness synth``: generate the synthetic suite into the cache and summarise it.

Example::

    harness synth --seed 0 --train-size 2000 --test-size 200 --format table

Each split is generated once under ``$HARNESS_HOME/synth/`` (keyed by generator version, seed, image size
and split size) and reused afterwards; the summary shows how skewed the closed answers are, which is the
accuracy a model that ignores the image can reach by always answering the majority answer.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from harness.cli.common import add_format_option, emit

COLUMNS = ("split", "cases", "closed", "open", "closed_majority", "majority_share", "lesions", "folder")


def summary_rows(seed: int, train_size: int, test_size: int, image_size: int) -> list[dict[str, Any]]:
    from harness.tasks.synth import generate_split, load_cases

    rows = []
    for split, size in (("train", train_size), ("test", test_size)):
        folder = generate_split(split, seed=seed, size=size, image_size=image_size)
        _, cases = load_cases(split, seed=seed, image_size=image_size, **{f"{split}_size": size})
        closed = Counter(c.answer for c in cases if c.answer_type == "closed")
        majority, count = closed.most_common(1)[0] if closed else ("-", 0)
        kinds = Counter(lesion.kind for case in cases for lesion in case.lesions)
        rows.append({
            "split": split,
            "cases": len(cases),
            "closed": sum(closed.values()),
            "open": sum(1 for c in cases if c.answer_type == "open"),
            "closed_majority": majority,
            "majority_share": round(count / max(1, sum(closed.values())), 3),
            "lesions": dict(sorted(kinds.items())),
            "folder": str(folder),
        })
    return rows


def handler(args: argparse.Namespace) -> int:
    rows = summary_rows(args.seed, args.train_size, args.test_size, args.image_size)
    emit(rows, args.format, COLUMNS)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from harness.tasks.synth import SynthOptions

    defaults = SynthOptions()
    parser = subparsers.add_parser(
        "synth",
        help="generate the synthetic suite (synth_vqa, synth_report) and summarise it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the suite")
    parser.add_argument("--train-size", type=int, default=defaults.train_size, help="cases in the train split")
    parser.add_argument("--test-size", type=int, default=defaults.test_size, help="cases in the test split")
    parser.add_argument("--image-size", type=int, default=defaults.image_size, help="image side in pixels")
    add_format_option(parser)
    parser.set_defaults(func=handler)
