"""Score closed-answer readers on the labelled closed answers (tests/data/closed_answers/).

Usage:
  python scripts/validate_closed_reader.py                       # every rule, both parts, per category
  python scripts/validate_closed_reader.py --rule closed_accuracy --errors   # and every disagreement
  python scripts/validate_closed_reader.py --split held_out --format json

A rule agrees with the gold judgement when it scores a hit exactly for the answers labelled ``correct``
(``incorrect`` and ``unanswerable`` are misses). For each rule: agreement overall (with its Wilson 95%
interval), on the ``dev`` and ``held_out`` parts, and per category; ``--errors`` lists each disagreement.
The LLaVA-Med rule leaves some items out of its denominator (NaN): they count as misses here unless
``--llava-med-skip`` drops them. See docs/metrics.md (Closed questions, "Validated on answers like
real models write").
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.core.errors import DataError, HarnessError
from harness.core.io import read_jsonl_lines
from harness.metrics import vqa
from harness.stats.intervals import wilson_interval

DEFAULT_SET = Path(__file__).resolve().parent.parent / "tests" / "data" / "closed_answers" / "closed_answers.jsonl"
GOLD = ("correct", "incorrect", "unanswerable")
FIELDS = ("id", "question", "reference", "answer", "gold", "category", "split")
# The readers to compare: closed_accuracy's rule now, the rule it used through task versions 1.1
# (first clause), the first-word rule and LLaVA-Med's substring rule.
RULES: dict[str, Callable[[object, object], float]] = {
    "closed_accuracy": vqa.closed_hit,
    "first_clause": vqa.first_clause_closed_hit,
    "first_word": vqa.first_word_closed_hit,
    "llava_med": vqa.llava_med_closed_hit,
}


def read_set(path: Path) -> list[dict[str, Any]]:
    """The labelled answers; a record lacking a field or with an unknown gold label is a one-line error."""
    rows = []
    for index, row in read_jsonl_lines(path):
        if not isinstance(row, dict):
            raise DataError(path, "expected a JSON object", record=index)
        rows.append(row)
        for name in FIELDS:
            if not isinstance(row.get(name), str):
                raise DataError(path, f"expected a string '{name}'", record=index, field=name)
        if row["gold"] not in GOLD:
            raise DataError(path, f"gold must be one of {', '.join(GOLD)}, found {row['gold']!r}", record=index,
                            field="gold")
    if not rows:
        raise DataError(path, "no labelled answers")
    return rows


def score_rule(rows: Sequence[dict[str, Any]], rule: Callable[[object, object], float], *,
               skip_nan: bool = False) -> dict[str, Any]:
    """Agreement of one rule with the gold labels: overall, per part and per category, and the disagreements."""
    groups: dict[str, list[bool]] = defaultdict(list)
    wrong, skipped = [], 0
    for row in rows:
        hit = rule(row["answer"], row["reference"])
        if math.isnan(hit):
            if skip_nan:
                skipped += 1
                continue
            hit = 0.0
        agrees = (hit == 1.0) == (row["gold"] == "correct")
        for key in ("all", f"split:{row['split']}", f"category:{row['category']}"):
            groups[key].append(agrees)
        if not agrees:
            wrong.append({"id": row["id"], "category": row["category"], "gold": row["gold"], "hit": hit,
                          "question": row["question"], "reference": row["reference"], "answer": row["answer"]})
    summary = {}
    for key, flags in sorted(groups.items()):
        low, high = wilson_interval(sum(flags), len(flags))
        summary[key] = {"agree": sum(flags), "n": len(flags), "accuracy": sum(flags) / len(flags),
                        "ci_low": low, "ci_high": high}
    return {"groups": summary, "disagreements": wrong, "skipped": skipped}


def format_scores(name: str, result: dict[str, Any], *, show_errors: bool) -> str:
    groups = result["groups"]
    lines = [f"{name}: {_cell(groups['all'])}  [{groups['all']['ci_low']:.3f}, {groups['all']['ci_high']:.3f}]"
             + (f"  ({result['skipped']} left out: NaN)" if result["skipped"] else "")]
    lines += [f"  {key.split(':', 1)[1]:<24} {_cell(value)}" for key, value in groups.items()
              if key.startswith("split:")]
    lines += [f"  {key.split(':', 1)[1]:<24} {_cell(value)}" for key, value in groups.items()
              if key.startswith("category:")]
    if show_errors:
        lines.append(f"  disagreements ({len(result['disagreements'])}):")
        lines += [f"    {w['id']} [{w['category']}] gold {w['gold']}, scored {w['hit']:g}: "
                  f"{w['question']!r} ref {w['reference']!r} answer {w['answer']!r}" for w in result["disagreements"]]
    return "\n".join(lines)


def _cell(value: dict[str, Any]) -> str:
    return f"{value['accuracy']:.3f} ({value['agree']}/{value['n']})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help="labelled answers (JSON lines)")
    parser.add_argument("--rule", action="append", choices=tuple(RULES), help="rule(s) to score (default: all)")
    parser.add_argument("--split", choices=("dev", "held_out", "all"), default="all", help="part of the set")
    parser.add_argument("--errors", action="store_true", help="list every disagreement")
    parser.add_argument("--llava-med-skip", action="store_true",
                        help="drop the items the LLaVA-Med rule leaves out of its denominator")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    try:
        rows = read_set(args.set)
    except HarnessError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    if args.split != "all":
        rows = [r for r in rows if r["split"] == args.split]
    results = {name: score_rule(rows, RULES[name], skip_nan=args.llava_med_skip and name == "llava_med")
               for name in args.rule or RULES}
    if args.format == "json":
        sys.stdout.write(json.dumps(results, indent=1) + "\n")
    else:
        sys.stdout.write("\n\n".join(format_scores(n, r, show_errors=args.errors) for n, r in results.items()) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
