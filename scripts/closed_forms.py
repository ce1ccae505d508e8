"""Count the forms of a benchmark's closed questions and how often the form disagrees with the answer.

Usage:
  python scripts/closed_forms.py ../shared/data/vqa_rad/testset.json ../shared/data/vqa_rad/trainset.json \\
      "../shared/data/vqa_rad/VQA_RAD Dataset Public.json"
  python scripts/closed_forms.py path/to/slake/test.json --list      # and every disagreeing question
  python scripts/closed_forms.py FILE --format json

Reads VQA-RAD (testset.json / trainset.json / the OSF file) and SLAKE (train/validate/test.json; English
questions only unless --all-languages) records: a JSON list of objects with ``question``, ``answer`` and
``answer_type``. For the closed ones it prints how many ``harness.tasks.base.closed_form`` calls yes/no,
choice or open, and the disagreements with the reference: a yes/no answer to a question prompted as a choice
(or open) and an answer other than yes/no to a question prompted yes/no. See docs/tasks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from harness.core.errors import DataError, HarnessError
from harness.tasks import _loading as L
from harness.tasks.base import closed_form

FORMS = ("yes/no", "choice", "open")


def closed_records(path: Path, all_languages: bool = False) -> list[dict[str, str]]:
    """The closed questions of one file (SLAKE: English only unless ``all_languages``), answers as strings."""
    rows = []
    for index, record in enumerate(L.read_records(path)):
        if not all_languages and "q_lang" in record and str(record["q_lang"]).strip() != "en":
            continue
        if L.answer_type(path, record, index) != "closed":
            continue
        question = L.get_field(path, record, "question", index)
        answer = str(L.get_field(path, record, "answer", index, kind=(str, int, float))).strip()
        rows.append({"question": question, "answer": answer})
    if not rows:
        raise DataError(path, "no closed questions")
    return rows


def tally(rows: list[dict[str, str]]) -> dict[str, Any]:
    """Items per form, yes/no answers per form, and the disagreeing items."""
    counts: Counter = Counter()
    disagreements = []
    for row in rows:
        form = closed_form(row["question"])
        yes_no = row["answer"].lower().strip(" .") in ("yes", "no")
        counts[form] += 1
        counts[f"{form}:yes/no answer"] += yes_no
        if (form == "yes/no") != yes_no:
            disagreements.append({"form": form, **row})
    return {"closed": len(rows), "forms": {f: counts[f] for f in FORMS},
            "yes_no_answers": {f: counts[f"{f}:yes/no answer"] for f in FORMS},
            "yes_no_answer_prompted_otherwise": sum(d["form"] != "yes/no" for d in disagreements),
            "other_answer_prompted_yes_no": sum(d["form"] == "yes/no" for d in disagreements),
            "disagreements": disagreements}


def format_table(results: dict[str, dict[str, Any]], show: bool) -> str:
    head = ("file", "closed", "yes/no", "choice", "open", "yes/no answer, not prompted yes/no",
            "other answer, prompted yes/no")
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for name, r in results.items():
        lines.append(" | ".join(str(v) for v in (name, r["closed"], *r["forms"].values(),
                                                  r["yes_no_answer_prompted_otherwise"],
                                                  r["other_answer_prompted_yes_no"])))
    if show:
        for name, r in results.items():
            lines += [f"\n{name}:"] + [f"  [{d['form']}] {d['question']!r} -> {d['answer']!r}" for d in r["disagreements"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="benchmark annotation files (JSON lists of records)")
    parser.add_argument("--all-languages", action="store_true", help="SLAKE: count every q_lang, not English only")
    parser.add_argument("--list", action="store_true", help="list every disagreeing question")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    try:
        results = {path.name: tally(closed_records(path, args.all_languages)) for path in args.files}
    except HarnessError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    if args.format == "json":
        sys.stdout.write(json.dumps(results, indent=1) + "\n")
    else:
        sys.stdout.write(format_table(results, args.list) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
