"""The speed guard: every benchmark ratio of one ``make bench`` run against its committed reference.

Each benchmark records, through the ``speed_guard`` fixture (``benchmarks/conftest.py``), the path it
times and the paths it should beat, or a ratio it computed itself (paired rounds). ``collect`` turns one
pytest-benchmark JSON file into ratios (higher is better: how many times faster the fast path is);
``compare`` sets each beside ``benchmarks/reference.json``: the last accepted value, its noise band, the
machine and the date. A ratio below value - band is flagged. The band is measured, not guessed:
``update`` runs the benchmarks k times and takes, for each ratio, the mean of the k values and the
one-sided 99% prediction bound for one new run, ``t(0.99, k-1) * sd * sqrt(1 + 1/k)``.

    python -m benchmarks.guard check .benchmarks/guard/last.json   # the end of `make bench`
    python -m benchmarks.guard update --runs 5                      # `make bench-reference`
    python -m benchmarks.guard update --from a.json b.json c.json   # from runs already made

``check`` exits 1 when a ratio is flagged, or when a ratio of the reference was not measured (unless
``--allow-missing``, for a run of some benchmarks only); 2 on bad input; 0 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import DataError, HarnessError

log = logging.getLogger("benchmarks.guard")

REPO = Path(__file__).resolve().parents[1]
REFERENCE = Path(__file__).with_name("reference.json")
GUARD_KEY = "guard"  # benchmarks/conftest.py writes extra_info[GUARD_KEY]; keep the two in step
SLOWDOWN_ENV = "HARNESS_BENCH_SLOWDOWN"
PREDICTION_LEVEL = 0.99
BAND_METHOD = ("one-sided 99% prediction bound for one new run from k runs: "
               "t(0.99, k-1) * sd * sqrt(1 + 1/k); value is the mean of the k runs")


@dataclass(frozen=True)
class Verdict:
    name: str
    measured: float | None
    reference: float | None
    band: float | None
    status: str  # "ok", "faster", "SLOWER", "missing", "new"
    note: str = ""

    @property
    def floor(self) -> float | None:
        return None if self.reference is None else self.reference - self.band

    @property
    def fails(self) -> bool:
        return self.status in ("SLOWER", "missing")


def ratio_name(fast: str, slow: str) -> str:
    """``training.core`` over ``training.trl`` -> ``training.core_vs_trl``: paths of one group share its prefix."""
    group, _, tail = fast.partition(".")
    slow_group, _, slow_tail = slow.partition(".")
    return f"{fast}_vs_{slow_tail}" if tail and group == slow_group else f"{fast}_vs_{slow}"


def collect(run: dict, source: str = "benchmark JSON") -> tuple[dict[str, float], dict[str, float]]:
    """The ratios of one pytest-benchmark JSON run, and the slowdowns injected into it (path -> factor).

    A timed path's figure is its fastest round (``stats.min``): load on a shared machine only ever adds time,
    so the minimum is the least disturbed round. A ratio is slow path's min / fast path's min."""
    benchmarks = run.get("benchmarks") if isinstance(run, dict) else None
    if not isinstance(benchmarks, list):
        raise DataError(source, "not a pytest-benchmark JSON file (--benchmark-json)", field="benchmarks")
    times: dict[str, float] = {}
    wanted: list[tuple[str, str]] = []
    ratios: dict[str, float] = {}
    slowdowns: dict[str, float] = {}
    for index, bench in enumerate(benchmarks):
        guard = (bench.get("extra_info") or {}).get(GUARD_KEY) or {}
        record = bench.get("fullname", index)
        if "path" in guard:
            try:
                seconds = float(bench["stats"]["min"])
            except (KeyError, TypeError, ValueError):
                raise DataError(source, "a timed path has no min time", record=record, field="stats.min") from None
            if not seconds > 0:
                raise DataError(source, f"min time {seconds!r} is not positive", record=record, field="stats.min")
            times[guard["path"]] = seconds
            wanted += [(guard["path"], slow) for slow in guard.get("faster_than", [])]
        for name, value in (guard.get("ratios") or {}).items():
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise DataError(source, f"ratio {name} is {value!r}", record=record, field="extra_info.guard.ratios")
            ratios[name] = float(value)
        slowdowns.update(guard.get("slowdown") or {})
    for fast, slow in wanted:
        if slow in times:
            ratios[ratio_name(fast, slow)] = times[slow] / times[fast]
    return ratios, slowdowns


def compare(measured: dict[str, float], reference: dict[str, dict]) -> list[Verdict]:
    """Each ratio against its reference ``{"value", "band"}``: SLOWER below value - band, faster above
    value + band, ok between; missing when the reference has it and the run does not, new the other way."""
    verdicts = []
    for name in sorted(set(measured) | set(reference)):
        value = measured.get(name)
        ref = reference.get(name)
        if ref is None:
            verdicts.append(Verdict(name, value, None, None, "new", "no reference yet"))
            continue
        expected, band = float(ref["value"]), float(ref["band"])
        if value is None:
            status = "missing"
        elif value < expected - band:
            status = "SLOWER"
        elif value > expected + band:
            status = "faster"
        else:
            status = "ok"
        note = "band wider than the value: cannot flag" if band >= expected else ""
        verdicts.append(Verdict(name, value, expected, band, status, note))
    return verdicts


def prediction_band(values: list[float], level: float = PREDICTION_LEVEL) -> float:
    """How far one new run may fall below the mean of ``values`` (k >= 2 runs) by noise alone, at ``level``."""
    from harness.stats.power import quantile

    k = len(values)
    if k < 2:
        raise HarnessError(f"a noise band needs at least 2 runs, got {k}")
    return quantile(level, k - 1) * statistics.stdev(values) * math.sqrt(1 + 1 / k)


def reference_entries(runs: list[dict[str, float]], machine: dict, date: str, loads: list[float] | None = None,
                      provisional: bool = False, note: str = "") -> dict[str, dict]:
    """Reference entries for the ratios measured in every run (a ratio some run lacks is left out)."""
    names = set.intersection(*(set(run) for run in runs)) if runs else set()
    entries = {}
    for name in sorted(names):
        values = [round(run[name], 4) for run in runs]  # as written, so the file's figures agree
        entry = {"value": round(statistics.fmean(values), 4), "band": round(prediction_band(values), 4),
                 "runs": values, "date": date, "machine": machine}
        if loads:
            entry["load_average_1min"] = [round(load, 2) for load in loads]
        if provisional:
            entry["provisional"] = True
        if note:
            entry["note"] = note
        entries[name] = entry
    return entries


def machine_info() -> dict:
    """CPU model, cores and the versions that move the ratios; no host name, no paths."""
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "system": f"{platform.system()} {platform.machine()}",
            "python": platform.python_version()}
    for package in ("torch", "transformers"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            pass
    return info


def load_reference(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "no reference file (make one with: python -m benchmarks.guard update)") from None
    except json.JSONDecodeError as err:
        raise DataError(path, f"not JSON ({err.msg}, line {err.lineno})") from None
    ratios = data.get("ratios") if isinstance(data, dict) else None
    if not isinstance(ratios, dict):
        raise DataError(path, "no 'ratios' object", field="ratios")
    for name, entry in ratios.items():
        for field in ("value", "band"):
            value = entry.get(field) if isinstance(entry, dict) else None
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise DataError(path, f"{field} must be a non-negative number, got {value!r}", record=name,
                                field=field)
    return data


def read_run(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "no such benchmark JSON (did the benchmark run write --benchmark-json?)") from None
    except json.JSONDecodeError as err:
        raise DataError(path, f"not JSON ({err.msg}, line {err.lineno})") from None


def format_table(verdicts: list[Verdict], reference: dict[str, dict], machine: dict) -> str:
    def x(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}x"

    width = max([len("ratio")] + [len(v.name) for v in verdicts])
    lines = [f"{'ratio':<{width}}  {'measured':>9}  {'reference':>9}  {'band':>6}  {'floor':>6}  verdict",
             "-" * (width + 50)]
    for v in verdicts:
        notes = [v.note] if v.note else []
        ref = reference.get(v.name) or {}
        if ref.get("provisional"):
            notes.append("provisional reference")
        if ref.get("machine") and _cpu(ref["machine"]) != _cpu(machine):
            notes.append("reference from another machine")
        band = "-" if v.band is None else f"±{v.band:.2f}"
        floor = "-" if v.floor is None else f"{max(v.floor, 0.0):.2f}x"
        lines.append(f"{v.name:<{width}}  {x(v.measured):>9}  {x(v.reference):>9}  {band:>6}  {floor:>6}  "
                     f"{v.status}{'  (' + '; '.join(notes) + ')' if notes else ''}")
    return "\n".join(lines)


def _cpu(machine: dict) -> tuple:
    return machine.get("cpu"), machine.get("cores")


def check(run_path: Path, reference_path: Path, allow_missing: bool = False) -> int:
    ratios, slowdowns = collect(read_run(run_path), str(run_path))
    reference = load_reference(reference_path)["ratios"]
    verdicts = compare(ratios, reference)
    machine = machine_info()
    print(f"\nspeed guard: {len(ratios)} ratios measured, {len(reference)} in the reference "
          f"(higher is better; flagged below reference - band)")
    sources = sorted({(e.get("date", "?"), (e.get("machine") or {}).get("cpu", "?"),
                       (e.get("machine") or {}).get("cores", "?")) for e in reference.values()})
    for date, cpu, cores in sources:
        print(f"reference measured {date} on {cpu}, {cores} cores")
    if slowdowns:
        slowed = ", ".join(f"{name} x{factor:g}" for name, factor in sorted(slowdowns.items()))
        print(f"{SLOWDOWN_ENV} slowed these paths on purpose: {slowed}")
    print(format_table(verdicts, reference, machine))
    slower = [v for v in verdicts if v.status == "SLOWER"]
    missing = [v for v in verdicts if v.status == "missing"]
    for v in slower:
        ref = reference[v.name]
        print(f"FLAGGED {v.name}: {v.measured:.2f}x is below {v.floor:.2f}x (reference {v.reference:.2f}x "
              f"- band {v.band:.2f}, {ref.get('date', '?')}, {ref.get('machine', {}).get('cpu', '?')})")
    for v in missing:
        print(f"{'not measured' if allow_missing else 'MISSING'} {v.name}: in the reference, not in this run "
              f"(a skipped or renamed benchmark?)")
    if slower or (missing and not allow_missing):
        print(f"speed guard: {len(slower)} ratio(s) flagged, {len(missing)} missing")
        return 1
    print("speed guard: no ratio fell below its band")
    return 0


def benchmark_env() -> dict[str, str]:
    """The environment of a benchmark run: this one, less the variables of an enclosing pytest-xdist worker
    (pytest-benchmark disables itself when it sees them, which ``--benchmark-only`` refuses)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}


def run_benchmarks(runs: int, pytest_args: list[str], workdir: Path) -> tuple[list[Path], list[float]]:
    """Run the benchmarks ``runs`` times, each into its own JSON file; also the 1-minute load before each."""
    paths, loads = [], []
    for i in range(runs):
        out = workdir / f"run-{i + 1}.json"
        loads.append(os.getloadavg()[0])
        command = [sys.executable, "-m", "pytest", *pytest_args, "--benchmark-only", "-q", "-p", "no:cacheprovider",
                   f"--benchmark-json={out}"]
        start = time.perf_counter()
        log.info("run %d/%d (load average %.2f) ...", i + 1, runs, loads[-1])
        done = subprocess.run(command, cwd=REPO, env=benchmark_env(), check=False)
        log.info("run %d/%d took %.0f s", i + 1, runs, time.perf_counter() - start)
        if done.returncode != 0:
            raise HarnessError(f"benchmark run {i + 1} failed (pytest exit {done.returncode}); reference unchanged")
        paths.append(out)
    return paths, loads


def update(reference_path: Path, runs: int, pytest_args: list[str], from_files: list[Path],
           provisional: bool = False, note: str = "") -> int:
    if os.environ.get(SLOWDOWN_ENV):
        raise HarnessError(f"{SLOWDOWN_ENV} is set: a reference is never measured with a slowdown injected")
    with tempfile.TemporaryDirectory(prefix="bench-guard-") as tmp:
        loads = None
        if not from_files:
            from_files, loads = run_benchmarks(runs, pytest_args, Path(tmp))
        collected = []
        for path in from_files:
            ratios, slowdowns = collect(read_run(path), str(path))
            if slowdowns:
                raise DataError(path, f"was measured with {SLOWDOWN_ENV} set", field="extra_info.guard.slowdown")
            collected.append(ratios)
    entries = reference_entries(collected, machine_info(), dt.date.today().isoformat(), loads, provisional, note)
    if not entries:
        raise HarnessError("no ratio was measured in every run; reference unchanged")
    for name in sorted(set().union(*collected) - set(entries)):
        log.warning("%s was measured in some runs only: left as it was", name)
    data = load_reference(reference_path) if Path(reference_path).is_file() else {}
    data.setdefault("ratios", {}).update(entries)
    data["band"] = BAND_METHOD
    data["how_to_update"] = "python -m benchmarks.guard update --runs 5  (make bench-reference)"
    from harness.core.io import write_json

    write_json(reference_path, data)
    width = max(len(name) for name in entries)
    print(f"{'ratio':<{width}}  {'mean':>6}  {'band':>6}  runs")
    for name, entry in entries.items():
        print(f"{name:<{width}}  {entry['value']:>5.2f}x  ±{entry['band']:>5.2f}  "
              + " ".join(f"{v:.2f}" for v in entry["runs"]))
    print(f"speed guard: {len(entries)} ratios written to {Path(reference_path).name} from {len(collected)} runs")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.guard", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    chk = sub.add_parser("check", help="compare one run's ratios with the reference; exit 1 if one is flagged")
    chk.add_argument("run", type=Path, help="the run's --benchmark-json file")
    chk.add_argument("--reference", type=Path, default=REFERENCE)
    chk.add_argument("--allow-missing", action="store_true",
                     help="do not fail on reference ratios this run did not measure (a partial run)")
    upd = sub.add_parser("update", help="measure the ratios k times and rewrite their reference entries",
                         epilog="example: python -m benchmarks.guard update --runs 5 -- benchmarks/test_report_metrics.py")
    upd.add_argument("--runs", type=int, default=5, help="k, the number of benchmark runs (>= 2; default 5)")
    upd.add_argument("--from", dest="from_files", type=Path, nargs="+", default=[],
                     help="build from these --benchmark-json files instead of running the benchmarks")
    upd.add_argument("--reference", type=Path, default=REFERENCE)
    upd.add_argument("--provisional", action="store_true",
                     help="mark the new entries provisional (measured on a loaded or unusual machine)")
    upd.add_argument("--note", default="", help="a remark stored with the new entries (e.g. the load)")
    upd.add_argument("pytest_args", nargs="*", default=["benchmarks"],
                     help="what to run (after --; default: benchmarks); ratios not measured keep their entries")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "check":
            return check(args.run, args.reference, args.allow_missing)
        if args.runs < 2 and not args.from_files:
            raise HarnessError("--runs must be at least 2: the band is the spread across runs")
        return update(args.reference, args.runs, args.pytest_args, args.from_files, args.provisional, args.note)
    except HarnessError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
