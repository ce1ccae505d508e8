"""The speed guard's recording hook, shared by every benchmark (``docs/benchmarks.md``, "Guard").

A timed test names the path it times and the paths it should beat, by wrapping the function that
pytest-benchmark times::

    benchmark.pedantic(speed_guard.path("generation.batched", _batched,
                                        faster_than=["generation.one_at_a_time"]), ...)

and a test that computes a ratio itself (paired rounds) records it under a stable name::

    speed_guard.ratio("training.paired.whole_core_vs_naive_minimal", value)

Both land in the benchmark's ``extra_info["guard"]`` and so in ``--benchmark-json``, which
``benchmarks/guard.py`` reads after ``make bench`` to compare every ratio with ``benchmarks/reference.json``.

``HARNESS_BENCH_SLOWDOWN="generation.batched=3,training.core=2"`` injects a slowdown: each call of a named
path sleeps, after it returns, for (factor - 1) times its own duration, so the path takes ``factor`` times
as long. It exists to show that the guard flags a slowed path (``tests/test_bench_guard.py``, or by hand);
the slowed benchmarks note it in ``extra_info`` and ``guard.py update`` refuses such runs.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

SLOWDOWN_ENV = "HARNESS_BENCH_SLOWDOWN"
GUARD_KEY = "guard"  # benchmarks/guard.py reads extra_info[GUARD_KEY]; keep the two in step


def parse_slowdown(text: str) -> dict[str, float]:
    """``"a.b=3,c.d=1.5"`` -> ``{"a.b": 3.0, "c.d": 1.5}``; a factor must be a number >= 1."""
    factors: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            factor = float(value)
        except ValueError:
            factor = math.nan
        if not sep or not name.strip() or not factor >= 1 or math.isinf(factor):
            raise pytest.UsageError(f"{SLOWDOWN_ENV}: '{item}' is not PATH=FACTOR with a finite FACTOR >= 1")
        factors[name.strip()] = factor
    return factors


def slowdown_factor(name: str) -> float:
    return parse_slowdown(os.environ.get(SLOWDOWN_ENV, "")).get(name, 1.0)


def slowable(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` itself, or, when ``HARNESS_BENCH_SLOWDOWN`` names ``name``, ``fn`` made that many times slower."""
    factor = slowdown_factor(name)
    if factor == 1.0:
        return fn

    @functools.wraps(fn)
    def slowed(*args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        time.sleep((factor - 1.0) * (time.perf_counter() - start))
        return result

    return slowed


class SpeedGuard:
    """Records, in one benchmark's ``extra_info``, what the guard compares."""

    def __init__(self, benchmark):
        self._info = benchmark.extra_info.setdefault(GUARD_KEY, {})

    def path(self, name: str, fn: Callable[..., Any], *, faster_than: list[str] = ()) -> Callable[..., Any]:
        """Name the path this benchmark times (``group.path``) and the paths it should beat; the guard's
        ratio is their time over this one (min over rounds). Returns ``fn``, slowed if so injected."""
        self._info["path"] = name
        if faster_than:
            self._info["faster_than"] = list(faster_than)
        return self.slowable(name, fn)

    def slowable(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn``, slowed if ``HARNESS_BENCH_SLOWDOWN`` names ``name`` (noted for the guard)."""
        factor = slowdown_factor(name)
        if factor != 1.0:
            self._info.setdefault("slowdown", {})[name] = factor
        return slowable(name, fn)

    def ratio(self, name: str, value: float) -> None:
        """Record a ratio this benchmark computed itself (higher is better: fast path's speed-up)."""
        self._info.setdefault("ratios", {})[name] = float(value)


@pytest.fixture
def speed_guard(benchmark) -> SpeedGuard:
    return SpeedGuard(benchmark)


def pytest_configure(config):
    parse_slowdown(os.environ.get(SLOWDOWN_ENV, ""))  # a bad setting stops the run before any benchmark


def pytest_terminal_summary(terminalreporter):
    factors = parse_slowdown(os.environ.get(SLOWDOWN_ENV, ""))
    if factors:
        slowed = ", ".join(f"{name} x{factor:g}" for name, factor in factors.items())
        terminalreporter.write_line(f"{SLOWDOWN_ENV} is set: these paths are slowed on purpose: {slowed}",
                                    yellow=True)
