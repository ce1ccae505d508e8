"""``harness train``: train a preference method on a pair file through the shared core.

Example::

    harness train --method dpo --model tiny --pairs vqa-rad_dpo_weighted.json \\
        --image-root data/vqa_rad/images --output-dir runs/dpo-tiny --max-steps 100 --lr 5e-6 --option beta=0.1
    harness train --config train.yaml --lr 1e-5        # flags from a YAML file; flags given here win

Every ``TrainConfig`` field is a flag (``--batch-size``, ``--grad-accum``, ``--no-lora``...); rerunning the
same command with ``--resume`` continues from the last checkpoint in ``--output-dir``, which keeps the
effective config as ``config.yaml`` (``--config`` reruns it).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import shutil
import typing
from pathlib import Path

from harness.cli.common import add_progress_options
from harness.cli.config_file import add_config_option, add_deprecated_alias
from harness.core.errors import HarnessError

log = logging.getLogger(__name__)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per ``TrainConfig`` field, with its default and help text."""
    from harness.training.config import TrainConfig

    group = parser.add_argument_group("training options")
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata.get('help', '')} (default: {f.default})"
        kind = hints[f.name]
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text)
            continue
        base = next((t for t in typing.get_args(kind) if t is not type(None)), kind)
        group.add_argument(flag, type=base, default=f.default, choices=f.metadata.get("choices") or None,
                           help=help_text, dest=f.name)


def config_from_args(args: argparse.Namespace):
    from harness.training.config import TrainConfig

    return TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})


def resolve_model(spec: str, precision: str):
    """A local folder, or a registered model name (``tiny``...), loaded as a HF vision-language model."""
    from harness.models.hf import HFVisionLanguageModel, load_hf_model

    if Path(spec).expanduser().is_dir():
        return load_hf_model(Path(spec).expanduser(), dtype=precision, device="cpu")
    try:
        from harness.models.resolve import load_model
    except ImportError as exc:  # the resolver is optional: a folder always works
        raise HarnessError(f"model '{spec}' is not a folder and model names cannot be resolved ({exc})") from None
    model = load_model(spec, device="cpu")
    if not isinstance(model, HFVisionLanguageModel):
        raise HarnessError(f"model '{spec}' is not a trainable Hugging Face model ({type(model).__name__})")
    return model


def default_output(kind: str, method: str, model: str) -> Path:
    from harness.core.paths import runs_dir

    return runs_dir() / f"{kind}-{method}-{Path(model).name or model}"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a preference method (dpo, mmedpo, ...) on a pair file",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_option(parser)
    parser.add_argument("--method", required=True, help="registered method name (see `harness methods`)")
    parser.add_argument("--model", required=True, help="model folder or registered model name (e.g. tiny)")
    parser.add_argument("--pairs", required=True, type=Path,
                        help="preference file: the project's JSON Lines or the MMedPO release JSON list")
    parser.add_argument("--image-root", type=Path, default=None, help="folder the pairs' image paths are relative to")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="run folder (default: $HARNESS_HOME/runs/train-<method>-<model>)")
    add_deprecated_alias(parser, "--output", "--output-dir", "output_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output-dir")
    parser.add_argument("--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
                        help="method hyperparameter, e.g. --option beta=0.2 (repeatable; `harness methods NAME` "
                             "lists them)")
    add_deprecated_alias(parser, "--set", "--option", "options", append=True)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N pairs (smoke runs)")
    add_config_arguments(parser)
    add_progress_options(parser)
    parser.set_defaults(func=handle)


def check_output(output: Path, flag: str = "--output-dir") -> Path:
    """The run folder: a one-line error when it is a file (or under one), before any model loads."""
    output = Path(output)
    for parent in (output, *output.parents):
        if parent.exists():
            if not parent.is_dir():
                raise HarnessError(f"{flag} {output}: {parent} is a file, not a folder")
            break
    return output


@contextlib.contextmanager
def removed_on_failure(output: Path):
    """A run folder this command creates is removed again when it fails before saving a checkpoint."""
    created = not output.exists()
    try:
        yield
    except BaseException:
        from harness.training.checkpoint import checkpoint_dirs

        if created and output.is_dir() and not checkpoint_dirs(output):
            shutil.rmtree(output, ignore_errors=True)
        raise


def load_checked_model(spec: str, precision: str):
    """``resolve_model`` with unreadable weights (a corrupt model.safetensors) as a one-line error."""
    return checked_load(spec, resolve_model, spec, precision)


def checked_load(spec: str, loader, *args, **kwargs):
    """``loader(*args, **kwargs)``; a model folder whose files cannot be read (truncated or corrupt weights,
    a broken config) becomes a one-line error naming the model instead of a traceback."""
    try:
        return loader(*args, **kwargs)
    except HarnessError:
        raise
    except Exception as exc:
        readable = isinstance(exc, (OSError, ValueError, RuntimeError, EOFError)) or \
            type(exc).__module__.startswith("safetensors")
        if not readable:
            raise
        detail = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise HarnessError(f"model '{spec}': cannot load it ({type(exc).__name__}: {detail})") from None


def handle(args: argparse.Namespace) -> int:
    from harness.core.options import parse_key_values
    from harness.curation.pairs import check_pair_images
    from harness.curation.preferences import read_pairs
    from harness.methods import get_method
    from harness.training.loop import train_preference

    config = config_from_args(args)
    # a mistyped or unknown key is a one-line error with a suggestion (Method.__init__), before any loading
    method = get_method(args.method)(**parse_key_values(args.options))
    if args.limit is not None and args.limit < 1:
        raise HarnessError(f"--limit must be at least 1, got {args.limit}")
    pairs = list(read_pairs(args.pairs))  # weights finite and in range, checked per record
    if args.limit is not None:
        pairs = pairs[:args.limit]
    if not pairs:
        raise HarnessError(f"{args.pairs}: no pairs")
    check_pair_images(pairs, args.image_root, args.pairs)
    output = check_output(args.output_dir or default_output("train", args.method, args.model))
    model = load_checked_model(args.model, config.precision)
    with removed_on_failure(output):
        from harness.cli.config_file import save_effective_config

        save_effective_config(args, output, "train")  # beside the checkpoints: reruns this training
        result = train_preference(model, method, pairs, args.image_root, output, config, resume=args.resume)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torch.distributed.run / accelerate launch the main process reports
    from harness.results.card import base_identity, write_training_cards

    write_training_cards(output, method=method, pairs=pairs, base_spec=args.model,  # over PEFT's empty template
                         base_model=base_identity(args.model, model))
    last = result.history[-1] if result.history else {}
    print(f"trained {method.name} for {len(result.history)} steps; final loss {last.get('loss', float('nan')):.4f}")
    if result.model_path:
        print(f"model: {result.model_path}")
    if result.adapter_path:
        print(f"adapter: {result.adapter_path}")
    return 0
