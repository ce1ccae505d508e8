"""CLI logging and progress: HTTP loggers at WARNING unless --verbose, --quiet, bars that do not flood a log."""

from __future__ import annotations

import io
import logging
import sys

from harness.cli import NON_TTY_MININTERVAL, build_parser, configure_logging, progress_bars


def test_http_loggers_stay_at_warning_unless_verbose():
    configure_logging()
    assert logging.getLogger("httpx").level == logging.WARNING
    assert logging.getLogger("openai").level == logging.WARNING
    assert logging.getLogger().level == logging.INFO
    configure_logging(verbose=True)
    assert logging.getLogger("httpx").level == logging.DEBUG
    configure_logging(quiet=True)
    assert logging.getLogger().level == logging.WARNING and logging.getLogger("urllib3").level == logging.WARNING
    configure_logging()


def test_every_long_command_takes_no_progress_and_quiet():
    parser = build_parser()
    for command in ("run", "eval", "curate", "train", "sft", "study"):
        args = parser.parse_args([command, *_required(command), "--no-progress", "--quiet"])
        assert args.no_progress and args.quiet, command
    assert build_parser().parse_args(["--quiet", "run", "--method", "dpo"]).quiet  # global flag not reset


def _required(command: str) -> list[str]:
    return {"eval": ["--model", "tiny", "--tasks", "synth_vqa"], "curate": ["--method", "mmedpo"],
            "train": ["--method", "dpo", "--model", "tiny", "--pairs", "p.jsonl"],
            "sft": ["--model", "tiny", "--tasks", "synth_vqa"], "run": ["--method", "dpo"]}.get(command, [])


def test_progress_bars_in_a_log_file_redraw_rarely_and_off_means_off(monkeypatch):
    from tqdm.auto import tqdm

    log = io.StringIO()  # not a terminal
    monkeypatch.setattr(sys, "stderr", log)
    with progress_bars(enabled=True):
        bar = tqdm(total=1000, file=log)
        assert bar.mininterval == NON_TTY_MININTERVAL
        for _ in range(1000):
            bar.update(1)
        bar.close()
    assert log.getvalue().count("\r") <= 3  # the first draw and the last, not one per step
    with progress_bars(enabled=False):
        assert tqdm(total=5, disable=False).disable
    assert not tqdm(total=5, file=io.StringIO()).disable  # restored afterwards
