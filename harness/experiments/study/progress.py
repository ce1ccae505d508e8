"""The study's progress bar: naming what runs now without redrawing more often than the bar allows."""

from __future__ import annotations

from typing import Any


def show_postfix(bar: Any, text: str) -> None:
    """Name the run now starting on the study's bar: redrawn now only if the bar's ``mininterval`` has passed
    since its last redraw (30 s in a log, ``harness.cli``), else at its next update."""
    bar.set_postfix_str(text, refresh=False)
    if not bar.disable and bar._time() - bar.last_print_t >= bar.mininterval:
        bar.refresh()
        bar.last_print_t = bar._time()
