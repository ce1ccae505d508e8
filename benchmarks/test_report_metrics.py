"""Report metrics on 10,000 generated/reference pairs: the harness vs pycocoevalcap's sequential scorers.

Run (not part of the test suite):

    OMP_NUM_THREADS=1 .venv/bin/pytest benchmarks/test_report_metrics.py --benchmark-only

Pairs: IU-Xray reports from all splits of ``iu_xray/annotation.json`` (the shared data folder,
``HARNESS_SHARED_DATA`` overrides), 10,000 references and 10,000 predictions drawn with replacement
(seed 0). pycocoevalcap runs as its own eval script does: PTBTokenizer on references, PTBTokenizer on
predictions, then Bleu(4), Meteor(), Rouge(), Cider() one after another. The harness runs
``compute_metrics`` on all 8 report metrics, once with ``n_boot=0`` (the same outputs) and once with
its default 1,000 bootstrap resamples (extra work pycocoevalcap does not do). Every run asserts that
the values equal pycocoevalcap's to 1e-12 (corpus values and every per-report score). Run the pycocoevalcap
test first (file order does): the harness tests then record the speed-up over it (min and mean time) in
``extra_info`` and log it. METEOR aligns on ``HARNESS_METEOR_THREADS`` threads (default: the usable CPUs).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.metrics import compute_metrics
from harness.metrics.coco_java import meteor_threads
from harness.metrics.report import REPORT_METRICS

N_PAIRS = 10_000
ROUNDS = 3
TOLERANCE = 1e-12
_VALUES: dict[str, float] = {}
_PER_SAMPLE: dict[str, list[float]] = {}
_BASELINE: dict[str, float] = {}
log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def pairs():
    if shutil.which("java") is None:
        pytest.skip("java not found on PATH: the PTB tokenizer and METEOR need a Java runtime")
    root = Path(os.environ.get("HARNESS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    path = root / "iu_xray" / "annotation.json"
    if not path.is_file():
        pytest.skip(f"IU-Xray annotation not found at {path} (set HARNESS_SHARED_DATA)")
    data = json.loads(path.read_text())
    reports = [r["report"] for split in ("train", "val", "test") for r in data[split]]
    rng = random.Random(0)
    references = [rng.choice(reports) for _ in range(N_PAIRS)]
    predictions = [rng.choice(reports) for _ in range(N_PAIRS)]
    return predictions, references


def pycocoevalcap_sequential(predictions, references) -> dict[str, float]:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": r}] for i, r in enumerate(references)})
    res = tokenizer.tokenize({i: [{"caption": p}] for i, p in enumerate(predictions)})
    bleu, bleu_per = Bleu(4).compute_score(gts, res, verbose=0)
    meteor = Meteor()
    meteor_score, meteor_per = meteor.compute_score(gts, res)
    del meteor  # ends its JVM, as a script's exit would
    rouge, rouge_per = Rouge().compute_score(gts, res)
    cider, cider_per = Cider().compute_score(gts, res)
    values = {f"bleu_{k + 1}": float(bleu[k]) for k in range(4)}
    values["bleu"] = float(np.mean(bleu))
    values["meteor"] = float(meteor_score)
    values["rouge_l"] = float(rouge)
    values["cider"] = float(cider)
    _PER_SAMPLE.update({f"bleu_{k + 1}": bleu_per[k] for k in range(4)})
    _PER_SAMPLE.update(meteor=meteor_per, rouge_l=rouge_per, cider=cider_per)
    return values


def _reference_values(pairs) -> dict[str, float]:
    if not _VALUES:
        _VALUES.update(pycocoevalcap_sequential(*pairs))
    return _VALUES


def _assert_identical(results, pairs) -> None:
    expected = _reference_values(pairs)
    for name in REPORT_METRICS:
        assert abs(results[name].value - expected[name]) <= TOLERANCE, (name, results[name].value, expected[name])
        assert results[name].n == N_PAIRS
        if name in _PER_SAMPLE:
            gap = np.abs(np.asarray(results[name].per_sample) - np.asarray(_PER_SAMPLE[name], dtype=float)).max()
            assert gap <= TOLERANCE, (name, gap)


def _record_speedup(benchmark) -> None:
    benchmark.extra_info["meteor_threads"] = meteor_threads()
    if _BASELINE:
        stats = benchmark.stats.stats
        speedup = {"speedup_min": _BASELINE["min"] / stats.min, "speedup_mean": _BASELINE["mean"] / stats.mean}
        benchmark.extra_info.update(speedup)
        log.warning("%s: %.2fx (min) / %.2fx (mean) vs pycocoevalcap", benchmark.name, *speedup.values())


@pytest.mark.benchmark(group="report-metrics-10k")
def test_pycocoevalcap_sequential(benchmark, pairs, speed_guard):
    timed = speed_guard.path("report_metrics.pycocoevalcap", pycocoevalcap_sequential)
    values = benchmark.pedantic(timed, args=pairs, rounds=ROUNDS, iterations=1)
    _VALUES.update(values)
    _BASELINE.update(min=benchmark.stats.stats.min, mean=benchmark.stats.stats.mean)


@pytest.mark.benchmark(group="report-metrics-10k")
def test_harness_compute_metrics(benchmark, pairs, speed_guard):
    timed = speed_guard.path("report_metrics.harness", compute_metrics, faster_than=["report_metrics.pycocoevalcap"])
    results = benchmark.pedantic(
        timed, args=(REPORT_METRICS, *pairs), kwargs={"n_boot": 0}, rounds=ROUNDS, iterations=1
    )
    _assert_identical(results, pairs)
    _record_speedup(benchmark)


@pytest.mark.benchmark(group="report-metrics-10k")
def test_harness_compute_metrics_with_bootstrap_ci(benchmark, pairs, speed_guard):
    timed = speed_guard.path("report_metrics.harness_with_ci", compute_metrics,
                             faster_than=["report_metrics.pycocoevalcap"])
    results = benchmark.pedantic(
        timed, args=(REPORT_METRICS, *pairs), kwargs={"n_boot": 1000}, rounds=ROUNDS, iterations=1
    )
    _assert_identical(results, pairs)
    assert all(r.ci_low <= r.value <= r.ci_high for r in results.values())
    _record_speedup(benchmark)
