"""A study's time split, and whether two studies gave the same numbers (docs/benchmarks.md, "Study throughput").

Reads ``studies/<id>/timings.json`` (written by ``harness study``) and prints the time per stage summed over the
sweep's runs, over the compared runs and for the whole study. With two studies (``HOME:ID`` each), it also
compares every stored metric of runs with the same (entry, seed), and of the sweep's runs with the same
(entry, rate), value for value, and the validation scores that chose each entry's rate: the check that a speed
change left the results bit-identical.

    python benchmarks/study_split.py home-before:before home-after:after
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from pathlib import Path

STAGES = ("pairs", "reference", "training", "evaluation", "base_evaluation", "other")


def _load(spec: str) -> tuple[Path, dict, dict]:
    """``(home, study.json, timings)``; a study still running has no ``timings.json`` yet: its finished runs'
    own timings, and no whole-study total."""
    home, _, study_id = spec.rpartition(":")
    folder = Path(home) / "studies" / study_id
    state = json.loads((folder / "study.json").read_text())
    if (folder / "timings.json").is_file():
        return Path(home), state, json.loads((folder / "timings.json").read_text())
    runs = {}
    for name, run_id in _runs(state).items():
        path = Path(home) / "runs" / str(run_id) / "timings.json"
        if name != "base" and path.is_file():
            label = name + (" (sweep)" if " lr " in name else "")
            runs[run_id] = {"label": label, **json.loads(path.read_text())["total"]}
    return Path(home), state, {"runs": runs, "total": None}


def _sum(records: list[dict]) -> dict:
    total = {"wall_s": round(sum(r["wall_s"] for r in records), 1), "n": len(records)}
    for name in STAGES:
        total[name] = round(sum(r["stages_s"].get(name, 0.0) for r in records), 1)
    return total


def split(state: dict, timings: dict) -> dict[str, dict]:
    runs = timings.get("runs", {}).values()
    sweep = [r for r in runs if r["label"].endswith("(sweep)")]
    compared = [r for r in runs if not r["label"].endswith("(sweep)")]
    result = {"sweep runs": _sum(sweep), "compared runs": _sum(compared)}
    if timings.get("total"):
        result["whole study"] = {"wall_s": round(timings["total"]["wall_s"], 1), "n": len(runs),
                                 **{k: round(v, 1) for k, v in timings["total"]["stages_s"].items()}}
    return result


def _metrics(home: Path, run_id: str) -> dict:
    with sqlite3.connect(home / "results.sqlite") as db:
        rows = db.execute("SELECT task, metric, value, ci_low, ci_high FROM results WHERE run_id = ?",
                          (run_id,)).fetchall()
    return {(task, metric): (value, low, high) for task, metric, value, low, high in rows}


def _runs(state: dict) -> dict[str, str]:
    runs = {f"{r['label']} seed {r['seed']}": r["run_id"] for r in state["runs"] if r["state"] == "done"}
    for label, chosen in (state.get("lr") or {}).items():
        for key, tried in (chosen.get("tried") or {}).items():
            if tried.get("score") is not None:  # finished and scored
                runs[f"{label} lr {key}"] = tried["run_id"]
    runs["base"] = state["base_run_id"]
    return runs


def compare(a: tuple[Path, dict], b: tuple[Path, dict]) -> list[str]:
    """Every difference between the two studies' stored metrics and sweep scores ([] when identical)."""
    (home_a, state_a), (home_b, state_b) = a, b
    runs_a, runs_b = _runs(state_a), _runs(state_b)
    problems = []  # a run finished in one study only (one still running) is not compared
    compared = 0
    for name in sorted(set(runs_a) & set(runs_b)):
        metrics_a, metrics_b = _metrics(home_a, runs_a[name]), _metrics(home_b, runs_b[name])
        if not metrics_a or metrics_a.keys() != metrics_b.keys():
            problems.append(f"{name}: other metrics stored")
        for key in sorted(metrics_a.keys() & metrics_b.keys()):
            compared += 1
            if metrics_a[key] != metrics_b[key]:
                problems.append(f"{name} {key[0]}/{key[1]}: {metrics_a[key]} != {metrics_b[key]}")
    for label in set(state_a.get("lr") or {}) & set(state_b.get("lr") or {}):
        scores = [{k: t["score"] for k, t in s["lr"][label]["tried"].items() if t.get("score") is not None}
                  for s in (state_a, state_b)]
        common = scores[0].keys() & scores[1].keys()
        if any(scores[0][k] != scores[1][k] for k in common) or \
                ("rate" in state_a["lr"][label] and "rate" in state_b["lr"][label]
                 and state_a["lr"][label]["rate"] != state_b["lr"][label]["rate"]):
            problems.append(f"{label}: sweep scores {scores[0]} != {scores[1]}")
    print(f"compared {compared} stored metric values (value and interval) over {len(set(runs_a) & set(runs_b))} "
          "runs, and every sweep score", file=sys.stderr)
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("studies", nargs="+", help="HARNESS_HOME:STUDY_ID (one, or two to compare)")
    args = parser.parse_args()
    loaded = [_load(spec) for spec in args.studies]
    for spec, (_, state, timings) in zip(args.studies, loaded):
        print(json.dumps({"study": os.path.basename(spec), "split": split(state, timings)}))
    if len(loaded) == 2:
        problems = compare(loaded[0][:2], loaded[1][:2])
        print(json.dumps({"identical": not problems, "differences": problems[:20]}))
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
