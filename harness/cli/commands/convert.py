"""``harness convert``: convert checkpoints into the layouts the harness loads.

``harness convert llava-med SRC DST`` turns a checkpoint in the original LLaVA code layout
(``LlavaMistralForCausalLM``, as LLaVA-Med v1.5 ships) into the transformers Llava layout, loadable by
``harness eval --model DST`` and every other command.
"""

from __future__ import annotations

import argparse

EXAMPLE = """example:
  harness convert llava-med models/llava-med-v1.5-mistral-7b models/llava-med-hf \\
      --vision-tower models/clip-vit-large-patch14-336
  harness eval --model models/llava-med-hf --tasks vqa_rad"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("convert", help="convert checkpoints to the transformers layout",
                                   description=__doc__, epilog=EXAMPLE,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    llava = kinds.add_parser("llava-med", help="original LLaVA / LLaVA-Med layout -> transformers Llava",
                             epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    llava.add_argument("src", metavar="SRC", help="folder of the original checkpoint (config.json, weights, tokenizer)")
    llava.add_argument("dst", metavar="DST", help="folder to write the converted model to")
    llava.add_argument("--vision-tower", default=None,
                       help="local CLIP folder (config.json, and the weights when the checkpoint lacks them); "
                            "default: the checkpoint's mm_vision_tower when that is a local folder")
    llava.add_argument("--dtype", default=None, choices=("fp16", "bf16", "fp32"),
                       help="dtype of the written weights (default: the checkpoint's)")
    llava.add_argument("--overwrite", action="store_true", help="write into a non-empty DST")
    llava.set_defaults(func=handle_llava_med)


def handle_llava_med(args: argparse.Namespace) -> int:
    from harness.models.convert_llava_med import ConvertOptions, convert_llava_med

    options = ConvertOptions(vision_tower=args.vision_tower, dtype=args.dtype, overwrite=args.overwrite)
    dst = convert_llava_med(args.src, args.dst, options)
    print(f"converted {args.src} -> {dst}")
    return 0
