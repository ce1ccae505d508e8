"""Build a folder in ``flaviagiammarino/vqa-rad``'s Hub layout from the original VQA-RAD files.

    python scripts/make_hub_layout.py ../shared/data/vqa_rad /tmp/hub-data/vqa_rad [--cmyk 3] [--limit N]

writes ``DEST/data/test-00000-of-00001-<hash>.parquet`` (the 451 test QA of ``testset.json``) and
``DEST/data/train-00000-of-00001-<hash>.parquet`` (the OSF file's training pool with duplicate
image-question-answer triplets dropped, as the Hub copy did), with the columns the Hub copy has: ``image``
(``{bytes, path}``: the JPEG file's bytes), ``question``, ``answer``. No ``answer_type``, no qid. ``--cmyk N``
re-encodes the first N distinct test images as CMYK JPEGs, a quirk of the Hub copy. Then

    harness eval --model tiny --tasks vqa_rad --data-dir /tmp/hub-data

evaluates it; with the original files beside ``data/`` (or ``--task-option annotations=...``) the answer types
are recovered by matching, otherwise they follow the yes/no rule (docs/tasks.md).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
from pathlib import Path

from PIL import Image

from harness.tasks.hub import write_snapshot

OSF_FILE = "VQA_RAD Dataset Public.json"
TEST_PHRASES = ("test_freeform", "test_para")


def cmyk_jpeg(data: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("CMYK").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def hub_rows(source: Path, records: list[dict], *, cmyk: int = 0, dedupe: bool = False) -> list[dict]:
    rows, seen, converted = [], set(), {}
    for record in records:
        name = record["image_name"]
        key = (name, record["question"], str(record["answer"]))
        if dedupe and key in seen:
            continue
        seen.add(key)
        if name not in converted:
            data = (source / "images" / name).read_bytes()
            converted[name] = cmyk_jpeg(data) if len(converted) < cmyk else data
        rows.append({"image": {"bytes": converted[name], "path": name}, "question": record["question"],
                     "answer": str(record["answer"])})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder holding testset.json, the OSF file and images/")
    parser.add_argument("dest", type=Path, help="task folder to write (data/*.parquet inside it)")
    parser.add_argument("--cmyk", type=int, default=0, help="re-encode the first N test images as CMYK JPEGs")
    parser.add_argument("--limit", type=int, default=None, help="rows per split (for small test folders)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    test = json.loads((args.source / "testset.json").read_text(encoding="utf-8"))
    osf = json.loads((args.source / OSF_FILE).read_text(encoding="utf-8"))
    train = [r for r in osf if r.get("phrase_type") not in TEST_PHRASES]
    for split, records, dedupe in (("test", test, False), ("train", train, True)):
        rows = hub_rows(args.source, records, cmyk=args.cmyk if split == "test" else 0, dedupe=dedupe)
        rows = rows[:args.limit] if args.limit else rows
        for path in write_snapshot(args.dest, split, rows):
            logging.info("%s: %d rows -> %s", split, len(rows), path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
