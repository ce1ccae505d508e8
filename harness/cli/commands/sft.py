"""``harness sft``: supervised fine-tuning through the shared core.

Examples::

    harness sft --model tiny --tasks synth_vqa,synth_report --output-dir runs/sft-tiny --epochs 3 --no-lora
    harness sft --model path/to/model --records sft.jsonl --image-root images/

A records file is JSON Lines of ``{"image": path, "prompt": str, "response": str}``; with ``--tasks`` the
tasks' train splits are used (prompt = the task's prompt, response = the reference answer).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from harness.cli.commands.train import (
    add_config_arguments,
    check_output,
    config_from_args,
    default_output,
    load_checked_model,
    removed_on_failure,
)
from harness.cli.common import add_progress_options, add_task_option_option, add_tasks_option
from harness.cli.config_file import add_config_option, add_deprecated_alias
from harness.core.errors import DataError, HarnessError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sft", help="supervised fine-tuning on task train splits or a records file",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_option(parser)
    parser.add_argument("--model", required=True, help="model folder or registered model name (e.g. tiny)")
    source = parser.add_mutually_exclusive_group(required=True)
    add_tasks_option(source, help="task names whose train split is used (a,b or a b)")
    source.add_argument("--records", type=Path, help="JSON Lines of {image, prompt, response}")
    parser.add_argument("--image-root", type=Path, default=None, help="folder the records' image paths are relative to")
    parser.add_argument("--data-dir", default=None, help="folder holding one sub-folder per dataset ($HARNESS_DATA)")
    add_task_option_option(parser)
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="run folder (default: $HARNESS_HOME/runs/sft-sft-<model>)")
    add_deprecated_alias(parser, "--output", "--output-dir", "output_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output-dir")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N records per source")
    add_config_arguments(parser)
    add_progress_options(parser)
    parser.set_defaults(func=handle)


def read_records(path: Path):
    from harness.core.io import read_jsonl
    from harness.experiments.sft import SFTRecord

    records = []
    for index, row in enumerate(read_jsonl(path)):
        for key in ("image", "prompt", "response"):
            if not isinstance(row.get(key), str) or not row[key]:
                raise DataError(path, "expected a non-empty string", record=row.get("id", index), field=key)
        records.append(SFTRecord(row["image"], row["prompt"], row["response"]))
    return records


def task_records(names: str, data_dir: str | None, image_dir: Path, limit: int | None):
    """Train-split items as records; in-memory images are written once under ``image_dir``."""
    import datasets

    from harness.core.images import to_rgb
    from harness.experiments.sft import SFTRecord
    from harness.tasks import get_task

    records = []
    for name in [n.strip() for n in names.split(",") if n.strip()]:
        task = get_task(name)
        data = task.load("train", data_dir)
        if limit is not None:
            data = data.select(range(min(limit, len(data))))
        raw = data.cast_column("image", datasets.Image(decode=False))
        for sample, image in zip(data, raw["image"]):
            path = image.get("path")
            if not path or not Path(path).is_file():
                path = image_dir / name / f"{sample['id']}.png"
                if not path.is_file():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    to_rgb(sample["image"]).save(path)
            records.append(SFTRecord(str(path), task.prompt(sample), str(sample["answer"])))
    return records


def handle(args: argparse.Namespace) -> int:
    from harness.experiments.sft import train_sft

    config = config_from_args(args)
    if args.limit is not None and args.limit < 1:
        raise HarnessError(f"--limit must be at least 1, got {args.limit}")
    from harness.cli.common import task_options_from_args
    from harness.cli.config_file import save_effective_config
    from harness.tasks.task_options import task_options

    options = task_options_from_args(args, args.tasks or [])
    output = check_output(args.output_dir or default_output("sft", "sft", args.model))
    with removed_on_failure(output):
        save_effective_config(args, output, "sft")  # beside the checkpoints: reruns this training
        if args.records is not None:
            records = read_records(args.records)[:args.limit]
        else:
            with task_options(options):
                records = task_records(",".join(args.tasks), args.data_dir, Path(output) / "images", args.limit)
        if not records:
            raise HarnessError("no SFT records")
        model = load_checked_model(args.model, config.precision)
        path = train_sft(model, records, output, config, image_root=args.image_root, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:  # the main process writes the cards
        from harness.experiments.sft import SFT, records_to_pairs
        from harness.results.card import base_identity, write_training_cards

        write_training_cards(output, method=SFT(), pairs=records_to_pairs(records), base_spec=args.model,
                             base_model=base_identity(args.model, model), command="harness sft")
    print(f"model: {path}")
    return 0
