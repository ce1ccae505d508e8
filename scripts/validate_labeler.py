"""Score the CheXpert-style labeler on the hand-labelled IU-Xray sentences.

Usage: python scripts/validate_labeler.py [--set tests/data/labeler_validation/iu_xray_sentences.jsonl] [--no-errors]

Prints mention accuracy, precision and recall per label class (positive / negative / uncertain), accuracy
per observation, and every wrong mention. See docs/metrics.md ("Validating the labeler").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.metrics.labeler_validation import format_report, read_validation_set, validate

DEFAULT_SET = Path(__file__).resolve().parent.parent / "tests" / "data" / "labeler_validation" / "iu_xray_sentences.jsonl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help="validation set (JSON lines)")
    parser.add_argument("--no-errors", action="store_true", help="do not list the wrong mentions")
    args = parser.parse_args(argv)
    result = validate(read_validation_set(args.set))
    sys.stdout.write(format_report(result, show_errors=not args.no_errors) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
