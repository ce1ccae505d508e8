"""Multiple-testing adjustments of p-values, in the input order (compare each adjusted p with alpha).

- ``holm``: Holm's step-down adjustment (Holm, 1979, Scand. J. Statist. 6:65): controls the family-wise
  error rate (any false rejection among the family) under any dependence.
- ``benjamini_hochberg``: the step-up adjustment of Benjamini & Hochberg (1995, JRSS B 57:289): controls the
  false discovery rate (the expected share of false rejections) under independence or positive dependence.
"""

from __future__ import annotations

from collections.abc import Sequence

CORRECTIONS = ("holm", "bh", "none")
NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "none"}


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values: the i-th smallest times (m - i + 1), kept monotone, capped at 1."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values): the i-th smallest times m / i, monotone from the top."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for k, i in enumerate(order):
        rank = m - k  # 1-based rank of p_values[i] from the smallest
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = min(1.0, running)
    return adjusted


def adjust(p_values: Sequence[float | None], method: str) -> list[float | None]:
    """Adjust the p-values that are not None with ``method`` (holm, bh or none); None stays None."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction '{method}' (corrections: {', '.join(CORRECTIONS)})")
    index = [i for i, p in enumerate(p_values) if p is not None]
    given = [float(p_values[i]) for i in index]
    done = {"holm": holm, "bh": benjamini_hochberg, "none": list}[method](given)
    out: list[float | None] = [None] * len(p_values)
    for i, p in zip(index, done):
        out[i] = p
    return out
