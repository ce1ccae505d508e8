"""The ``harness`` command line: a thin layer over the library.

Each module in ``harness/cli/commands/`` defines ``register(subparsers)`` that adds one command (or a
group) and sets ``func`` on its parser; ``main`` discovers them, so adding a command edits no central list.
Command modules import heavy libraries (torch, transformers, datasets) inside their handlers only, so that
``harness --help`` and ``harness tasks`` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from harness import __version__
from harness.errors import HarnessError

log = logging.getLogger("harness")


def build_parser() -> argparse.ArgumentParser:
    from harness.cli import commands

    parser = argparse.ArgumentParser(
        prog="harness",
        description="Align medical vision-language models with preference optimization: MMedPO, DPO and peers.",
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"harness.cli.commands.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        result = args.func(args)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
