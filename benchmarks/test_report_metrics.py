"""Report metrics on 10,000 generated/reference pairs: the harness vs pycocoevalcap's sequential scorers.

Run (not part of the test suite):

    OMP_NUM_THREADS=1 .venv/bin/pytest benchmarks/test_report_metrics.py --benchmark-only

Pairs: IU-Xray reports from all splits of ``iu_xray/annotation.json`` (the shared data folder,
``HARNESS_SHARED_DATA`` overrides), 10,000 references and 10,000 predictions drawn with replacement
(seed 0). pycocoevalcap runs as its own eval script does: PTBTokenizer on references, PTBTokenizer on
predictions, then Bleu(4), Meteor(), Rouge(), Cider() one after another. The harness runs
``compute_metrics`` on all 8 report metrics, once with ``n_boot=0`` (the same outputs) and once with
its default 1,000 bootstrap resamples (extra work pycocoevalcap does not do). Every run asserts that
the values equal pycocoevalcap's to 1e-6.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.metrics import compute_metrics
from harness.metrics.report import REPORT_METRICS

N_PAIRS = 10_000
ROUNDS = 3
_VALUES: dict[str, float] = {}


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
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    meteor = Meteor()
    meteor_score, _ = meteor.compute_score(gts, res)
    del meteor  # ends its JVM, as a script's exit would
    values = {f"bleu_{k + 1}": float(bleu[k]) for k in range(4)}
    values["bleu"] = float(np.mean(bleu))
    values["meteor"] = float(meteor_score)
    values["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
    values["cider"] = float(Cider().compute_score(gts, res)[0])
    return values


def _reference_values(pairs) -> dict[str, float]:
    if not _VALUES:
        _VALUES.update(pycocoevalcap_sequential(*pairs))
    return _VALUES


def _assert_identical(results, pairs) -> None:
    expected = _reference_values(pairs)
    for name in REPORT_METRICS:
        assert results[name].value == pytest.approx(expected[name], abs=1e-6), name
        assert results[name].n == N_PAIRS


@pytest.mark.benchmark(group="report-metrics-10k")
def test_pycocoevalcap_sequential(benchmark, pairs, speed_guard):
    timed = speed_guard.path("report_metrics.pycocoevalcap", pycocoevalcap_sequential)
    values = benchmark.pedantic(timed, args=pairs, rounds=ROUNDS, iterations=1)
    _VALUES.update(values)


@pytest.mark.benchmark(group="report-metrics-10k")
def test_harness_compute_metrics(benchmark, pairs, speed_guard):
    timed = speed_guard.path("report_metrics.harness", compute_metrics, faster_than=["report_metrics.pycocoevalcap"])
    results = benchmark.pedantic(
        timed, args=(REPORT_METRICS, *pairs), kwargs={"n_boot": 0}, rounds=ROUNDS, iterations=1
    )
    _assert_identical(results, pairs)


@pytest.mark.benchmark(group="report-metrics-10k")
def test_harness_compute_metrics_with_bootstrap_ci(benchmark, pairs, speed_guard):
    timed = speed_guard.path("report_metrics.harness_with_ci", compute_metrics,
                             faster_than=["report_metrics.pycocoevalcap"])
    results = benchmark.pedantic(
        timed, args=(REPORT_METRICS, *pairs), kwargs={"n_boot": 1000}, rounds=ROUNDS, iterations=1
    )
    _assert_identical(results, pairs)
    assert all(r.ci_low <= r.value <= r.ci_high for r in results.values())
