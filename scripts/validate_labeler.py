"""Score the CheXpert-style labeler on hand-labelled IU-Xray reports and sentences.

Usage:
  python scripts/validate_labeler.py                      # whole reports: tuning and held-out parts
  python scripts/validate_labeler.py --part tune --errors # the tuning part only, with every disagreement
  python scripts/validate_labeler.py --uncertain-positive # uncertain labels count as positive on both sides
  python scripts/validate_labeler.py --sentences [--set FILE] [--no-errors]   # the sentence-level check

Reports (tests/data/labeler_validation/iu_xray_reports.jsonl): per-pathology precision / recall / F1 and the
macro-F1 with a bootstrap interval, per part. Sentences (iu_xray_sentences.jsonl): mention accuracy,
precision and recall per label class, accuracy per observation, and every wrong mention. See docs/metrics.md
("Validating the labeler") and RULES.md beside the sets.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.metrics.labeler_validation import (
    PARTS,
    format_report,
    format_report_scores,
    read_report_set,
    read_validation_set,
    score_reports,
    validate,
)

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "labeler_validation"
DEFAULT_SET = DATA / "iu_xray_sentences.jsonl"
DEFAULT_REPORTS = DATA / "iu_xray_reports.jsonl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", action="store_true", help="score the sentence set instead of the reports")
    parser.add_argument("--set", type=Path, help="validation set (JSON lines; default: the reports, or the "
                                                 "sentences with --sentences)")
    parser.add_argument("--part", choices=(*PARTS, "all"), default="all", help="report part(s) to score")
    parser.add_argument("--uncertain-positive", action="store_true",
                        help="reports: an uncertain label counts as positive (hand and labeler alike)")
    parser.add_argument("--errors", action="store_true", help="reports: list every disagreement of the parts scored")
    parser.add_argument("--no-errors", action="store_true", help="sentences: do not list the wrong mentions")
    args = parser.parse_args(argv)
    if args.sentences:
        result = validate(read_validation_set(args.set or DEFAULT_SET))
        sys.stdout.write(format_report(result, show_errors=not args.no_errors) + "\n")
        return 0
    rows = read_report_set(args.set or DEFAULT_REPORTS)
    parts = PARTS if args.part == "all" else (args.part,)
    blocks = [format_report_scores(score_reports(rows, part, uncertain_positive=args.uncertain_positive),
                                   show_errors=args.errors) for part in parts]
    sys.stdout.write("\n\n".join(blocks) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
