"""``harness export lm-eval DIR``: write lm-eval task folders for the harness's tasks.

Example::

    harness export lm-eval lm_tasks/ --data-dir data/ --prompt-format-from models/tiny
    lm_eval --model hf-multimodal --model_args pretrained=models/tiny --include_path lm_tasks/ --tasks vqa_rad
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from harness.cli.common import add_data_dir_option, add_tasks_option

    parser = subparsers.add_parser("export", help="export the harness's tasks for other tools (lm-eval)")
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    lm = targets.add_parser(
        "lm-eval", help="write lm-eval task folders (YAML + utils.py calling the harness's loaders and metrics)",
        epilog="example: harness export lm-eval lm_tasks/ --data-dir data/ --prompt-format-from models/tiny",
    )
    lm.add_argument("out_dir", metavar="DIR", help="folder to write (pass it to lm_eval --include_path)")
    add_tasks_option(lm, help="harness tasks to export, a,b or a b (default: vqa_rad slake iu_xray mimic_cxr synth_vqa synth_report)")
    lm.add_argument("--split", default="test", help="split the lm-eval tasks evaluate")
    lm.add_argument("--prompt-format-from", default=None, metavar="MODEL_DIR",
                    help="bake this model's chat template around the prompts (else run lm_eval --apply_chat_template)")
    add_data_dir_option(lm)
    lm.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from harness.lmeval.export import export_lm_eval

    written = export_lm_eval(args.out_dir, args.tasks, data_dir=args.data_dir, split=args.split,
                             prompt_format_from=args.prompt_format_from)
    for task, lm_tasks in written.items():
        print(f"{task}: {', '.join(lm_tasks)}")
    return 0
