"""Where a run's and a study's wall time goes: pair building, reference log-probs, training, evaluation.

Code marks its stages with ``with stage("training"): ...``; a ``clock()`` block collects the time of every
stage entered inside it. Stages nest, and a stage's time is *exclusive*: the reference log-probs computed
inside training count as ``reference``, not as ``training`` too, so the stages of a clock add up to at most its
wall time, and the rest is ``other`` (model resolution, fingerprints, manifests, the study's own work).
Several clocks may run at once (a study's, and the run's inside it); each gets every stage's time.

Timings are metadata: they are written beside a run (``runs/<id>/timings.json``) and a study
(``studies/<id>/timings.json``), never into a cache key, a fingerprint or a result. On a GPU the stages are
wall time without synchronisation, so a kernel still running when a stage ends counts in the next one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


def _now() -> float:
    return time.perf_counter()


STAGES = ("pairs", "reference", "training", "evaluation", "base_evaluation", "other")
STAGE_LABELS = {"pairs": "pair building", "reference": "reference log-probs", "training": "training",
                "evaluation": "evaluation", "base_evaluation": "base evaluation", "other": "other"}


@dataclass
class Clock:
    """The stage times collected while it was active (seconds) and its own wall time."""

    started: float = field(default_factory=lambda: _now())
    seconds: dict[str, float] = field(default_factory=dict)
    wall: float | None = None  # set when its block ends

    def elapsed(self) -> float:
        return self.wall if self.wall is not None else _now() - self.started

    def split(self) -> dict[str, float]:
        """Seconds per stage (every name of STAGES), ``other`` being the wall time no stage claimed."""
        named = {name: round(self.seconds.get(name, 0.0), 3) for name in STAGES if name != "other"}
        named["other"] = round(max(0.0, self.elapsed() - sum(self.seconds.values())), 3)
        return named

    def as_dict(self) -> dict[str, Any]:
        return {"wall_s": round(self.elapsed(), 3), "stages_s": self.split()}


_clocks: ContextVar[tuple[Clock, ...]] = ContextVar("harness_clocks", default=())
_open: ContextVar[tuple[list, ...]] = ContextVar("harness_stages", default=())  # [name, start, child seconds]


@contextmanager
def clock() -> Iterator[Clock]:
    """Collect the stage times of this block (and its own wall time) in the clock it yields."""
    active = Clock()
    token = _clocks.set((*_clocks.get(), active))
    try:
        yield active
    finally:
        active.wall = _now() - active.started
        _clocks.reset(token)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Count this block's wall time, less that of the stages nested in it, as ``name`` in every active clock."""
    if name not in STAGES or name == "other":
        raise ValueError(f"unknown stage {name!r} (stages: {', '.join(STAGES[:-1])})")
    if not _clocks.get():  # nobody is measuring: no bookkeeping at all
        yield
        return
    frame = [name, _now(), 0.0]
    token = _open.set((*_open.get(), frame))
    try:
        yield
    finally:
        elapsed = _now() - frame[1]
        _open.reset(token)
        parents = _open.get()
        if parents:
            parents[-1][2] += elapsed
        for active in _clocks.get():
            active.seconds[name] = active.seconds.get(name, 0.0) + elapsed - frame[2]


def add(total: dict[str, Any] | None, part: dict[str, Any]) -> dict[str, Any]:
    """Two ``Clock.as_dict()`` records summed (a resumed run's sessions, a study's invocations)."""
    if not total:
        return {"wall_s": part["wall_s"], "stages_s": dict(part["stages_s"])}
    stages = {name: round(total["stages_s"].get(name, 0.0) + part["stages_s"].get(name, 0.0), 3) for name in STAGES}
    return {"wall_s": round(total["wall_s"] + part["wall_s"], 3), "stages_s": stages}


def split_table(rows: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rows for ``harness.cli.common.format_table``: one per (label, ``as_dict`` record), seconds and shares."""
    table = []
    for label, record in rows:
        wall = record["wall_s"] or 0.0
        row: dict[str, Any] = {"": label, "wall s": f"{wall:.1f}"}
        for name in STAGES:
            seconds = record["stages_s"].get(name, 0.0)
            share = f" ({100 * seconds / wall:.0f}%)" if wall > 0 else ""
            row[STAGE_LABELS[name]] = f"{seconds:.1f}{share}"
        table.append(row)
    return table
