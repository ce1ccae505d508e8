"""The ``harness`` command line: a thin layer over the library.

Each module in ``harness/cli/commands/`` defines ``register(subparsers)`` that adds one command (or a
group) and sets ``func`` on its parser; ``main`` discovers them, so adding a command edits no central list.
Command modules import heavy libraries (torch, transformers, datasets) inside their handlers only, so that
``harness --help`` and ``harness tasks`` start fast.

Logging: INFO by default, DEBUG with ``--verbose``, WARNING with ``--quiet``; the HTTP and hub libraries'
loggers (httpx, httpcore, openai, urllib3...) stay at WARNING unless ``--verbose``, so a curation does not
log every request. Progress bars: off with ``--no-progress`` or ``--quiet``; when stderr is not a terminal
(a log file, CI) a bar redraws at most every 30 seconds instead of several times a second. Every log record
is redacted when it is created (``harness.core.secrets.install_log_redaction``): no key or URL credential reaches
a log, and an error line is redacted the same way.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from harness import __version__
from harness.core.errors import HarnessError
from harness.core.secrets import install_log_redaction, redact_text

log = logging.getLogger("harness")

# Third-party loggers that log every HTTP request or file lock at INFO/DEBUG.
NOISY_LOGGERS = ("httpx", "httpcore", "openai", "urllib3", "huggingface_hub", "filelock", "fsspec", "PIL",
                 "matplotlib", "datasets", "gradio")
NON_TTY_MININTERVAL = 30.0  # seconds between progress redraws when stderr is a file or a pipe


def build_parser() -> argparse.ArgumentParser:
    from harness.cli import commands

    parser = argparse.ArgumentParser(
        prog="harness",
        description="Align medical vision-language models with preference optimization: MMedPO, DPO and peers.",
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, HTTP requests included")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only, no progress bars")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"harness.cli.commands.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from harness.cli.config_file import parse_command_line, warn_deprecated

    parser = build_parser()
    try:
        args = parse_command_line(parser, argv)  # with the flags of a --config file
    except HarnessError as exc:
        print(f"error: {_one_line(redact_text(str(exc)))}", file=sys.stderr)
        return 2
    quiet = getattr(args, "quiet", False)
    configure_logging(verbose=args.verbose, quiet=quiet)
    warn_deprecated(args)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        with progress_bars(enabled=not (quiet or getattr(args, "no_progress", False))):
            result = args.func(args)
    except HarnessError as exc:
        print(f"error: {_one_line(redact_text(str(exc)))}", file=sys.stderr)
        return 2
    except OSError as exc:  # the environment refused: a folder that cannot be made, a name too long, a full disk
        if isinstance(exc, BrokenPipeError):
            sys.stderr.close()
            return 0
        where = f"{_shorten(str(exc.filename))}: " if exc.filename else ""
        print(f"error: {redact_text(where)}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 130
    return int(result or 0)


def configure_logging(*, verbose: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    # keys and URL credentials never reach a log, whichever handler writes it (ours, a notebook's, pytest's)
    install_log_redaction()
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)  # basicConfig does nothing when a handler exists (tests, notebooks)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)


@contextmanager
def progress_bars(*, enabled: bool = True) -> Iterator[None]:
    """While a command runs: every tqdm bar off (``enabled=False``), or, when stderr is not a terminal, redrawn
    at most every ``NON_TTY_MININTERVAL`` seconds. Applied to tqdm itself, so bars in any module obey."""
    from tqdm import std

    original = std.tqdm.__init__
    interactive = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    if enabled and interactive:
        yield
        return

    def init(self, *args, **kwargs):
        if not enabled:
            kwargs["disable"] = True
        else:
            kwargs["mininterval"] = max(float(kwargs.get("mininterval") or 0.1), NON_TTY_MININTERVAL)
        original(self, *args, **kwargs)

    std.tqdm.__init__ = init
    try:
        yield
    finally:
        std.tqdm.__init__ = original


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
