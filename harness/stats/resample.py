"""Seeded bootstrap resampling of items (Efron & Tibshirani, 1993, "An Introduction to the Bootstrap", ch. 6).

A resample is a vector of counts (how often each item is drawn, summing to n), so a statistic of summed
per-item sufficient statistics is one matrix product per block of resamples. The same ``seed`` gives the
same resamples, whatever the statistic: two runs resampled with one seed see the same items (paired).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

BLOCK = 100  # resamples drawn per block: bounds memory at BLOCK * n counts


def resample_counts(n: int, *, seed: int, n_boot: int) -> Iterator[np.ndarray]:
    """Yield blocks of resample count rows ``(b, n)``: how often each item is drawn in each resample."""
    rng = np.random.default_rng(seed)
    left = n_boot
    while left > 0:
        size = min(BLOCK, left)
        idx = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        yield np.bincount(idx.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)
        left -= size


def bootstrap_values(stats: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], *, seed: int,
                     n_boot: int) -> np.ndarray:
    """The statistic on each of ``n_boot`` resamples of the items: ``(n_boot,)``.

    ``stats`` is ``(n, ...)``, one row of per-item sufficient statistics per item; ``statistic`` maps
    ``(B, ...)`` sums over each resample's items to ``B`` values. Empty when there are no items or resamples.
    """
    stats = np.asarray(stats, dtype=np.float64)
    n = stats.shape[0]
    if n == 0 or n_boot <= 0:
        return np.empty(0)
    flat = stats.reshape(n, -1)
    return np.concatenate([np.asarray(statistic((counts @ flat).reshape(-1, *stats.shape[1:])), dtype=np.float64)
                           for counts in resample_counts(n, seed=seed, n_boot=n_boot)])


def bootstrap_many(stats: list[np.ndarray], statistics: list[Callable[[np.ndarray], np.ndarray]], *, seed: int,
                   n_boot: int) -> np.ndarray:
    """Several runs' statistics on the SAME resamples of their shared items: ``(len(stats), n_boot)``.

    Every array in ``stats`` has one row per item, in the same item order (a paired design).
    """
    if not stats:
        return np.empty((0, n_boot))
    n = stats[0].shape[0]
    if any(s.shape[0] != n for s in stats):
        raise ValueError(f"paired statistics differ in length: {[s.shape[0] for s in stats]}")
    if n == 0 or n_boot <= 0:
        return np.empty((len(stats), 0))
    flats = [np.asarray(s, dtype=np.float64).reshape(n, -1) for s in stats]
    blocks = []
    for counts in resample_counts(n, seed=seed, n_boot=n_boot):
        blocks.append([np.asarray(f((counts @ flat).reshape(-1, *s.shape[1:])), dtype=np.float64)
                       for s, f, flat in zip(stats, statistics, flats)])
    return np.stack([np.concatenate([b[i] for b in blocks]) for i in range(len(stats))])


def sum_by_cluster(clusters: list[object], flat: np.ndarray) -> np.ndarray:
    """Rows of ``flat`` summed per cluster key (first-seen order is not kept: keys are sorted)."""
    _, index = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    out = np.zeros((int(index.max()) + 1, flat.shape[1]))
    np.add.at(out, index, flat)
    return out
