"""Every test, p-value, bootstrap, interval and minimum detectable effect of the harness, in one place.

Metrics, ``harness study``, ``harness regress``, the lm-eval importer and the leaderboard call these
modules; no other module defines a test or an interval (``tests/stats/test_one_place.py`` checks it).

- :mod:`~harness.stats.resample`: seeded bootstrap resampling of items (Efron & Tibshirani, 1993);
- :mod:`~harness.stats.intervals`: Wilson (1927) intervals for proportions, percentile bootstrap
  intervals, and their hull for pooled ratios, so an interval never narrows at the boundary;
- :mod:`~harness.stats.exact`: the exact binomial (sign) and McNemar (1947) tests, via ``scipy.stats``;
- :mod:`~harness.stats.multiplicity`: Holm (1979) and Benjamini & Hochberg (1995) adjustments;
- :mod:`~harness.stats.power`: minimum detectable effects (Cohen, 1988, ch. 2);
- :mod:`~harness.stats.items`: every metric as per-item sufficient statistics plus an aggregate formula;
- :mod:`~harness.stats.paired`: the paired bootstrap of one metric between two runs (the gate);
- :mod:`~harness.stats.seeds`: arms of several training seeds compared over items and seeds (the study);
- :mod:`~harness.stats.calibration`: checks that null p-values are uniform (Kolmogorov-Smirnov).
"""
