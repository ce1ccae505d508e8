"""The speed guard (``benchmarks/guard.py``): a ratio that falls below its reference minus its band is flagged.

The comparison is checked on figures alone (no timing). One test runs a real, tiny pytest-benchmark session
through the benchmarks' own ``speed_guard`` hook with ``HARNESS_BENCH_SLOWDOWN`` slowing one of two
identical fast paths: the slowed one is flagged and its unslowed twin passes. Its paths sleep instead of
computing, and the margins are tenfold, so machine load cannot change the verdicts.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import guard  # noqa: E402
from harness.core.errors import DataError, HarnessError  # noqa: E402


def bench_json(times: dict[str, float], faster_than: dict[str, list[str]] | None = None,
               ratios: dict[str, float] | None = None, slowdown: dict[str, float] | None = None) -> dict:
    """A pytest-benchmark ``--benchmark-json`` document holding what the benchmarks' hook records."""
    faster_than, slowdown = faster_than or {}, slowdown or {}
    benchmarks = []
    for path, seconds in times.items():
        info = {"path": path}
        if path in faster_than:
            info["faster_than"] = faster_than[path]
        if path in slowdown:
            info["slowdown"] = {path: slowdown[path]}
        benchmarks.append({"group": path.split(".")[0], "name": f"test_{path}", "fullname": f"b.py::test_{path}",
                           "extra_info": {"guard": info, "samples_per_second": 1 / seconds},
                           "stats": {"min": seconds, "mean": seconds * 1.1, "median": seconds * 1.05, "rounds": 5}})
    if ratios:
        benchmarks.append({"group": "paired", "name": "test_paired", "fullname": "b.py::test_paired",
                           "extra_info": {"guard": {"ratios": ratios}}, "stats": {"min": 1.0, "rounds": 7}})
    return {"machine_info": {"node": "somehost"}, "benchmarks": benchmarks, "version": "5.3.1"}


GENERATION = {"faster_than": {"generation.batched": ["generation.one_at_a_time"]}}


def generation_run(batched: float, one_at_a_time: float = 0.60, paired: float = 1.50) -> dict:
    return bench_json({"generation.batched": batched, "generation.one_at_a_time": one_at_a_time},
                      ratios={"training.paired.whole_core_vs_naive_minimal": paired}, **GENERATION)


def test_ratio_names_drop_the_shared_group():
    assert guard.ratio_name("training.core", "training.trl") == "training.core_vs_trl"
    assert guard.ratio_name("a.fast", "b.slow") == "a.fast_vs_b.slow"


def test_collect_divides_the_slow_paths_fastest_round_by_the_fast_paths_and_keeps_recorded_ratios():
    ratios, slowdowns = guard.collect(generation_run(batched=0.12))
    assert ratios == {"generation.batched_vs_one_at_a_time": pytest.approx(5.0),
                      "training.paired.whole_core_vs_naive_minimal": 1.5}
    assert slowdowns == {}
    # a ratio whose slow path was not run (skipped, deselected) is absent, not guessed
    partial = bench_json({"generation.batched": 0.12}, **GENERATION)
    assert guard.collect(partial)[0] == {}


def test_compare_flags_only_a_ratio_below_reference_minus_band():
    reference = {"gen": {"value": 5.0, "band": 1.0}, "metrics": {"value": 2.0, "band": 0.5},
                 "train": {"value": 1.5, "band": 0.25}, "gone": {"value": 3.0, "band": 1.0}}
    verdicts = {v.name: v for v in guard.compare({"gen": 3.9, "metrics": 2.6, "train": 1.25, "extra": 2.0},
                                                 reference)}
    assert {name: v.status for name, v in verdicts.items()} == {
        "gen": "SLOWER", "metrics": "faster", "train": "ok", "gone": "missing", "extra": "new"}
    assert verdicts["train"].floor == 1.25  # exactly at the floor is within the band
    assert [name for name, v in verdicts.items() if v.fails] == ["gen", "gone"]


def test_a_band_wider_than_the_value_is_said_to_guard_nothing():
    (verdict,) = guard.compare({"gen": 0.1}, {"gen": {"value": 2.0, "band": 2.5}})
    assert verdict.status == "ok" and "cannot flag" in verdict.note


def test_band_is_the_one_sided_99_percent_prediction_bound_of_one_new_run():
    # k = 3, mean 5, sd 1: t(0.99, 2) = 6.9646, times sqrt(1 + 1/3)
    assert guard.prediction_band([4.0, 5.0, 6.0]) == pytest.approx(6.9646 * (4 / 3) ** 0.5, rel=1e-4)
    # k = 5, sd 0.1: t(0.99, 4) = 3.7469, times sqrt(1.2)
    assert guard.prediction_band([1.4, 1.5, 1.6, 1.5, 1.5]) == pytest.approx(
        3.7469 * 0.0707107 * 1.2 ** 0.5, rel=1e-4)
    with pytest.raises(HarnessError, match="at least 2 runs"):
        guard.prediction_band([5.0])


def test_a_slowed_fast_path_is_flagged_against_a_reference_from_unslowed_runs(tmp_path, capsys):
    """The injected slowdown on figures alone: batched generation made 3x slower drops 5x to 1.7x."""
    unslowed = [generation_run(batched=b, paired=p) for b, p in ((0.120, 1.48), (0.125, 1.52), (0.118, 1.50))]
    entries = guard.reference_entries([guard.collect(run)[0] for run in unslowed], {"cpu": "X", "cores": 2},
                                      "2026-12-08")
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps({"ratios": entries}))
    assert entries["generation.batched_vs_one_at_a_time"]["value"] == pytest.approx(4.9, abs=0.1)

    passing, slowed = tmp_path / "passing.json", tmp_path / "slowed.json"
    passing.write_text(json.dumps(generation_run(batched=0.122, paired=1.49)))
    slowed.write_text(json.dumps(generation_run(batched=0.366, paired=1.49)))
    assert guard.check(passing, reference) == 0
    assert "FLAGGED" not in capsys.readouterr().out
    assert guard.check(slowed, reference) == 1
    out = capsys.readouterr().out
    assert "FLAGGED generation.batched_vs_one_at_a_time: 1.64x" in out
    assert "FLAGGED training.paired" not in out


def test_a_ratio_the_run_did_not_measure_fails_unless_the_run_was_partial(tmp_path, capsys):
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps({"ratios": {"generation.batched_vs_one_at_a_time": {"value": 5, "band": 1},
                                                "report_metrics.harness_vs_pycocoevalcap": {"value": 2, "band": 0.3}}}))
    run = tmp_path / "run.json"
    run.write_text(json.dumps(generation_run(batched=0.12)))
    assert guard.check(run, reference) == 1
    assert "MISSING report_metrics.harness_vs_pycocoevalcap" in capsys.readouterr().out
    assert guard.check(run, reference, allow_missing=True) == 0


def test_update_from_runs_writes_value_band_machine_and_date_and_keeps_other_entries(tmp_path, monkeypatch):
    monkeypatch.delenv(guard.SLOWDOWN_ENV, raising=False)
    reference = tmp_path / "reference.json"
    old = {"value": 2.0, "band": 0.3, "runs": [1.9, 2.0, 2.1], "date": "2026-12-01", "machine": {"cpu": "Y"}}
    reference.write_text(json.dumps({"ratios": {"report_metrics.harness_vs_pycocoevalcap": old}}))
    runs = []
    for i, batched in enumerate((0.10, 0.12, 0.15)):
        runs.append(tmp_path / f"run-{i}.json")
        runs[-1].write_text(json.dumps(generation_run(batched=batched, one_at_a_time=0.6)))
    assert guard.main(["update", "--reference", str(reference), "--provisional", "--from", *map(str, runs)]) == 0
    written = json.loads(reference.read_text())
    entry = written["ratios"]["generation.batched_vs_one_at_a_time"]
    assert entry["runs"] == [6.0, 5.0, 4.0]
    assert entry["value"] == 5.0 and entry["band"] == pytest.approx(8.042, abs=1e-3)
    assert entry["provisional"] is True and entry["date"]
    assert {"cpu", "cores"} <= set(entry["machine"])
    assert written["ratios"]["report_metrics.harness_vs_pycocoevalcap"] == old
    assert socket.gethostname() not in reference.read_text()


def test_update_refuses_runs_made_with_a_slowdown(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(guard.SLOWDOWN_ENV, raising=False)
    run = tmp_path / "run.json"
    run.write_text(json.dumps(bench_json({"generation.batched": 0.3, "generation.one_at_a_time": 0.6},
                                         slowdown={"generation.batched": 3.0}, **GENERATION)))
    reference = tmp_path / "reference.json"
    assert guard.main(["update", "--reference", str(reference), "--from", str(run), str(run)]) == 2
    assert "HARNESS_BENCH_SLOWDOWN" in capsys.readouterr().err
    assert not reference.exists()
    monkeypatch.setenv(guard.SLOWDOWN_ENV, "generation.batched=3")
    assert guard.main(["update", "--reference", str(reference), "--runs", "3"]) == 2
    assert not reference.exists()


@pytest.mark.parametrize(("content", "message"), [
    ("{", "reference.json: not JSON"),
    ('{"runs": []}', "reference.json, field 'ratios': no 'ratios' object"),
    ('{"ratios": {"gen": {"value": 5}}}', "reference.json, record gen, field 'band'"),
])
def test_a_bad_reference_is_one_line_naming_file_record_and_field(tmp_path, capsys, content, message):
    reference = tmp_path / "reference.json"
    reference.write_text(content)
    run = tmp_path / "run.json"
    run.write_text(json.dumps(generation_run(batched=0.12)))
    assert guard.main(["check", str(run), "--reference", str(reference)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_file_that_is_not_benchmark_json_is_named():
    with pytest.raises(DataError, match="run.json, field 'benchmarks'"):
        guard.collect({"tests": []}, "run.json")


def test_the_committed_reference_is_valid_and_says_where_and_when_each_figure_was_measured():
    data = guard.load_reference(guard.REFERENCE)
    assert data["ratios"]
    for name, entry in data["ratios"].items():
        assert len(entry["runs"]) >= 2, name
        assert entry["value"] == pytest.approx(sum(entry["runs"]) / len(entry["runs"]), abs=1e-3), name
        assert entry["band"] == pytest.approx(guard.prediction_band(entry["runs"]), abs=1e-3), name
        assert entry["date"] and entry["machine"]["cpu"] and entry["machine"]["cores"], name


def test_a_bad_slowdown_setting_is_refused():
    from benchmarks import conftest as hook

    assert hook.parse_slowdown(" a.b=3, c.d=1.5 ") == {"a.b": 3.0, "c.d": 1.5}
    for bad in ("a.b", "a.b=0.5", "a.b=fast", "=2"):
        with pytest.raises(pytest.UsageError, match="HARNESS_BENCH_SLOWDOWN"):
            hook.parse_slowdown(bad)


SELFTEST = '''
import statistics
import time

import pytest


def nap(seconds):
    time.sleep(seconds)


@pytest.mark.benchmark(group="selftest")
def test_reference_path(benchmark, speed_guard):
    benchmark.pedantic(speed_guard.path("selftest.reference", nap), args=(0.04,), rounds=5, iterations=1)


@pytest.mark.benchmark(group="selftest")
@pytest.mark.parametrize("name", ["fast", "twin"])
def test_fast_path(benchmark, speed_guard, name):
    timed = speed_guard.path(f"selftest.{name}", nap, faster_than=["selftest.reference"])
    benchmark.pedantic(timed, args=(0.004,), rounds=5, iterations=1)


@pytest.mark.benchmark(group="selftest")
def test_paired(benchmark, speed_guard):
    ratios = {"fast": [], "twin": []}

    def one_round():
        start = time.perf_counter()
        nap(0.04)
        reference = time.perf_counter() - start
        for name in ratios:
            start = time.perf_counter()
            speed_guard.slowable(f"selftest.{name}", nap)(0.004)
            ratios[name].append(reference / (time.perf_counter() - start))

    benchmark.pedantic(one_round, rounds=3, iterations=1)
    for name, values in ratios.items():
        speed_guard.ratio(f"selftest.paired_{name}_vs_reference", statistics.median(values))
'''


def test_a_real_benchmark_run_with_a_slowed_path_is_flagged_and_its_unslowed_twin_passes(tmp_path, capsys):
    """pytest-benchmark times two identical 4 ms paths against a 40 ms one (ratio ~10) through the benchmarks'
    hook, with ``selftest.twin`` slowed 10x (ratio ~1). Against a reference of 10 +- 7 the twin is flagged,
    timed alone and in paired rounds, and ``fast`` passes: only a 3x error in sleeping could change that."""
    (tmp_path / "test_selftest.py").write_text(SELFTEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    out = tmp_path / "run.json"
    env = {**guard.benchmark_env(), "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           guard.SLOWDOWN_ENV: "selftest.twin=10", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # a faster start
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "pytest_benchmark.plugin", "-p", "benchmarks.conftest",
                           "-p", "no:cacheprovider", "--benchmark-only", f"--benchmark-json={out}", "test_selftest.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "HARNESS_BENCH_SLOWDOWN is set: these paths are slowed on purpose: selftest.twin x10" in done.stdout

    ratios, slowdowns = guard.collect(json.loads(out.read_text()), str(out))
    assert slowdowns == {"selftest.twin": 10.0}
    expected = {"selftest.fast_vs_reference", "selftest.twin_vs_reference",
                "selftest.paired_fast_vs_reference", "selftest.paired_twin_vs_reference"}
    assert set(ratios) == expected
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps({"ratios": {name: {"value": 10.0, "band": 7.0} for name in expected}}))
    assert guard.check(out, reference) == 1
    report = capsys.readouterr().out
    flagged = {line.split()[1].rstrip(":") for line in report.splitlines() if line.startswith("FLAGGED")}
    assert flagged == {"selftest.twin_vs_reference", "selftest.paired_twin_vs_reference"}, report
    assert "slowed these paths on purpose: selftest.twin x10" in report


@pytest.mark.slow  # two pytest start-ups: 3 s on an idle machine, 9 s under heavy load
def test_update_runs_the_benchmarks_k_times_and_writes_each_ratios_k_values(tmp_path, monkeypatch):
    """``update --runs 2`` on the tiny sleeping benchmark: the whole path `make bench-reference` takes."""
    (tmp_path / "test_selftest.py").write_text(SELFTEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    monkeypatch.delenv(guard.SLOWDOWN_ENV, raising=False)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    reference = tmp_path / "reference.json"
    assert guard.main(["update", "--runs", "2", "--reference", str(reference), "--",
                       "-p", "pytest_benchmark.plugin", "-p", "benchmarks.conftest", str(tmp_path / "test_selftest.py")]) == 0
    ratios = json.loads(reference.read_text())["ratios"]
    assert set(ratios) == {"selftest.fast_vs_reference", "selftest.twin_vs_reference",
                           "selftest.paired_fast_vs_reference", "selftest.paired_twin_vs_reference"}
    for entry in ratios.values():
        assert len(entry["runs"]) == 2 and len(entry["load_average_1min"]) == 2
        assert entry["runs"][0] > 3 and entry["runs"][1] > 3  # 40 ms over 4 ms, nothing slowed
        assert entry["band"] == pytest.approx(guard.prediction_band(entry["runs"]), abs=1e-3)
