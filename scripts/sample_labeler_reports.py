"""Draw the IU-Xray reports for the report-level labeler validation, and split them into tune / held-out.

Usage: python scripts/sample_labeler_reports.py [--annotation ../shared/data/iu_xray/annotation.json]
       [--out reports.jsonl]

The draw never looks at the labeler. It takes the distinct report texts of the R2Gen ``annotation.json``
(all three splits, in file order; a text's record is its first occurrence), then draws, with
``random.Random(SEED)``:

- ``LONG`` texts from those with more words than the median distinct text, and
- ``SHORT`` texts from the others,

because longer reports are the ones that describe findings (the short ones are mostly the normal
templates), so the oversampling gives the rarer pathologies some positive reports. The drawn texts are
shuffled with the same generator and the first ``HELDOUT`` become the held-out part, the rest the tuning
part. Each output line is ``{"id", "source", "split", "report"}``; labels are added by hand
(tests/data/labeler_validation/RULES.md).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

SEED = 26
LONG, SHORT = 200, 100
HELDOUT = 150


def distinct_reports(annotation: dict) -> list[dict]:
    seen: dict[str, dict] = {}
    for split in ("train", "val", "test"):
        for record in annotation.get(split, []):
            text = str(record["report"]).strip()
            if text and text not in seen:
                seen[text] = {"id": record["id"], "source": f"{split}:{record['id']}", "report": text}
    return list(seen.values())


def sample(annotation: dict, *, n_long: int = LONG, n_short: int = SHORT, heldout: int = HELDOUT,
           seed: int = SEED) -> list[dict]:
    reports = distinct_reports(annotation)
    median = statistics.median(len(r["report"].split()) for r in reports)
    long = [r for r in reports if len(r["report"].split()) > median]
    short = [r for r in reports if len(r["report"].split()) <= median]
    rng = random.Random(seed)
    drawn = rng.sample(long, n_long) + rng.sample(short, n_short)
    rng.shuffle(drawn)
    return [{**r, "split": "heldout" if i < heldout else "tune"} for i, r in enumerate(drawn)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotation", type=Path, default=Path("../shared/data/iu_xray/annotation.json"))
    parser.add_argument("--out", type=Path, help="write JSON lines here (default: stdout)")
    args = parser.parse_args(argv)
    rows = sample(json.loads(args.annotation.read_text(encoding="utf-8")))
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
