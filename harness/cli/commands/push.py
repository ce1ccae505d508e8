"""``harness push``: publish a trained model to the Hugging Face Hub, with its model card and results.

Examples::

  harness push 20261207-162927-f46aac                          # prepare the adapter's folder (no HF_TOKEN set)
  export HF_TOKEN=...                                          # a write token, from the environment only
  harness push 20261207-162927-f46aac --repo-id me/llava-med-mmedpo --private
  harness push 20261207-162927-f46aac --merged --output-dir upload/   # the merged model, into upload/
  harness push runs/dpo-tiny --base-model llava-hf/llava-1.5-7b-hf     # a harness train folder, its base named

RUN is a ``harness run`` id or the folder of a ``harness train`` / ``harness sft``. The folder (default
``<run folder>/push/<adapter|merged|full>/``) holds the model, the processor's files, README.md (the model card)
and results.json. With HF_TOKEN in the environment it is uploaded (``create_repo`` + ``upload_folder``);
without a token, offline (HF_HUB_OFFLINE=1) or with the Hub unreachable, the command says where the folder is
and stops there. Exit status: 0 uploaded or prepared only (``--format json``: ``uploaded`` tells which), 2 an
error (an unknown run, a run with no trained model, a bad repo id, the Hub refusing the token or the repo).
The token is read from the environment only and never printed or logged.
"""

from __future__ import annotations

import argparse

from harness.cli.common import add_format_option, print_json

EPILOG = __doc__.split("Examples::", 1)[1]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "push", help="publish a trained model (adapter or merged) with its model card to the Hugging Face Hub",
        description="Write an upload-ready folder for a trained model (model, processor, model card, results) "
                    "and upload it to the Hub when HF_TOKEN is set and the Hub answers.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", metavar="RUN", help="a harness run id, or a harness train / sft folder")
    parser.add_argument("--repo-id", default=None,
                        help="Hub repo 'owner/name' (default: <token's user>/<base>-<method>-<run id>)")
    parser.add_argument("--merged", action="store_true",
                        help="push the LoRA-merged model instead of the adapter")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--output-dir", default=None,
                        help="where to write the folder (default: <run folder>/push/<adapter|merged|full>)")
    parser.add_argument("--base-model", default=None, metavar="HUB_ID",
                        help="the base model's Hub id, for a base trained from a local copy (the card's base_model)")
    add_format_option(parser)
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from harness.results.publish import TOKEN_ENV, push

    outcome = push(args.run, repo_id=args.repo_id, merged=args.merged, private=args.private,
                   output_dir=args.output_dir, base_model_id=args.base_model)
    if args.format == "json":
        print_json(outcome.to_dict())
        return 0
    if outcome.uploaded:
        print(f"uploaded the {outcome.kind} of {outcome.run} to {outcome.url} (folder: {outcome.folder})")
    else:
        how = f"set {TOKEN_ENV} and rerun" if outcome.reason.startswith(TOKEN_ENV) else "rerun when the Hub answers"
        print(f"prepared {outcome.folder} (not uploaded: {outcome.reason}; {how} to upload it)")
    return 0
