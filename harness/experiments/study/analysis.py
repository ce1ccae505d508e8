"""The study's comparison: per method entry, task and headline metric, over test items and training seeds.

Every run's headline metrics are turned into per-item sufficient statistics (``harness.stats.items``,
checked against the metric's own value), so each number below is about the metric exactly as ``harness
eval`` reports it (a pooled finding F1 is tested as a pooled F1, never through per-report scores). For each
(method, task, metric), on the test items every run of the study answered:

- ``mean``, ``sd``: the metric over the method's training seeds (``sd`` with n - 1; None with one seed);
- ``delta_vs_base`` with ``ci_low``/``ci_high``, ``p_vs_base``, ``mde``: the method's mean minus the base
  model's value, tested by ``harness.stats.seeds.compare_arms`` (a paired bootstrap over items, the same
  draws for every run, plus the method's training variance over seeds), so the interval excludes 0 exactly
  when p < 0.05; ``p_item_vs_base`` is the same test with the seeds taken as given, and ``item_level_only``
  marks a difference significant only there;
- ``delta_vs_ref``, ``ref_ci_low``/``ref_ci_high``, ``p_vs_ref``: the same against the reference entry
  (both arms' seed variance counted);
- ``p_vs_base_adj``, ``p_vs_ref_adj``: the p-values adjusted over every test of the study (``correction``,
  Holm by default).

Values, intervals, standard errors and MDEs are in the metric's display units (x100 for rates, as
``harness.results.compare.display_scale`` says); each record says so (``units``, ``scale``). See docs/study.md.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from harness.core.errors import HarnessError
from harness.core.io import read_json, write_json
from harness.experiments.study.runner import BASE, Study
from harness.metrics import items as item_stats
from harness.stats.multiplicity import NAMES as CORRECTION_NAMES
from harness.stats.multiplicity import adjust
from harness.stats.seeds import Arm, ArmComparison, arms, compare_arms

log = logging.getLogger(__name__)

RECORD_KEYS = ("method", "task", "metric", "mean", "sd", "n_seeds", "n_items", "delta_vs_base", "ci_low", "ci_high",
               "p_vs_base", "p_vs_base_adj", "p_item_vs_base", "item_level_only", "mde", "delta_vs_ref",
               "ref_ci_low", "ref_ci_high", "p_vs_ref", "p_vs_ref_adj", "p_item_vs_ref", "se", "se_item", "df",
               "seed_sd", "test", "seed_variance", "correction", "higher_is_better", "units", "scale")
ALPHA = 0.05
CACHE_FORMAT = 2  # per-item statistics (format 1 cached per-sample scores)


def run_statistics(run_id: str, tasks: list[str], store, cache_dir=None) -> dict[str, dict[str, dict[str, Any]]]:
    """``{task: {metric: {"value", "higher_is_better", "ids", "stats" | "unsupported"}}}`` for a stored run's
    headline metrics: the per-item statistics of each (``harness.stats.items``), in item-id order.

    Cached as JSON in ``cache_dir`` (a finished run's statistics never change).
    """
    cached = cache_dir / f"{run_id}.json" if cache_dir is not None else None
    if cached is not None and cached.exists():
        data = read_json(cached)
        if data.get("format") == CACHE_FORMAT and all(t in data["tasks"] for t in tasks):
            return _unpack(data)
    from harness.metrics import get_metric
    from harness.regress.sources import load_source
    from harness.results.compare import headline_metrics
    from harness.tasks import get_task

    _, predictions = load_source(run_id, store=store)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for task_name in tasks:
        records = sorted((r for (t, _), r in predictions.items() if t == task_name), key=lambda r: str(r["id"]))
        if not records:
            raise HarnessError(f"run {run_id} has no predictions for task '{task_name}'")
        out[task_name] = {}
        cache: dict = {}
        texts: dict[str | None, tuple[list[str], list[str], list[str]]] = {}
        for name in headline_metrics(get_task(task_name)):
            metric = get_metric(name)
            if metric.subset not in texts:  # one list object per subset, so the statistics cache can key on it
                chosen = [r for r in records if metric.subset is None or r["answer_type"] == metric.subset]
                texts[metric.subset] = ([str(r["id"]) for r in chosen], [str(r["prediction"]) for r in chosen],
                                        [str(r["reference"]) for r in chosen])
            ids, preds, refs = texts[metric.subset]
            if not ids:
                continue
            cell: dict[str, Any] = {"higher_is_better": metric.higher_is_better, "ids": ids,
                                    "value": float(metric(preds, refs, seed=0, n_boot=0).value)}
            try:
                stats = item_stats.item_statistics(name, preds, refs, cache=cache)
                if stats.kind != "mean":
                    item_stats.check(name, stats, cell["value"], f"run {run_id}")
                cell["stats"] = stats.stats
            except HarnessError as exc:
                if not item_stats.unsupported(name):
                    raise
                cell["unsupported"] = str(exc)
            out[task_name][name] = cell
    if cached is not None:
        write_json(cached, _pack(out), indent=None)
    return out


def _pack(data: dict) -> dict:
    """JSON form: arrays shared by several metrics (one labelling per run) stored once."""
    arrays: dict[int, tuple[str, np.ndarray]] = {}
    tasks: dict[str, dict[str, dict]] = {}
    for task, cells in data.items():
        tasks[task] = {}
        for name, cell in cells.items():
            packed = {k: v for k, v in cell.items() if k != "stats"}
            if "stats" in cell:
                key = arrays.setdefault(id(cell["stats"]), (f"a{len(arrays)}", cell["stats"]))[0]
                packed["stats"] = key
            tasks[task][name] = packed
    return {"format": CACHE_FORMAT, "tasks": tasks, "arrays": {k: a.tolist() for k, a in arrays.values()}}


def _unpack(data: dict) -> dict:
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in data["arrays"].items()}
    return {task: {name: {**cell, **({"stats": arrays[cell["stats"]]} if "stats" in cell else {})}
                   for name, cell in cells.items()} for task, cells in data["tasks"].items()}


def _study_statistics(study: Study, store) -> tuple[dict, dict[str, list[tuple[int, dict]]]]:
    """The base run's statistics and, per method entry, ``[(training seed, statistics)]`` of its finished runs."""
    tasks = list(study.state["settings"]["tasks"])
    base_id = study.state["base_run_id"]
    if not base_id:
        raise HarnessError(f"study {study.study_id} has no base evaluation yet: run it first")
    cache = study.folder / "item_stats"
    base = run_statistics(base_id, tasks, store, cache)
    per_label: dict[str, list[tuple[int, dict]]] = {}
    for label in study.state["methods"]:
        if label == BASE:
            continue
        runs = sorted(study.runs_of(label), key=lambda r: r["seed"])
        if runs:
            per_label[label] = [(r["seed"], run_statistics(r["run_id"], tasks, store, cache)) for r in runs]
        else:
            log.warning("study %s: no finished run of %s yet", study.study_id, label)
    return base, per_label


def _shared(cells: list[dict]) -> tuple[list[str], list[item_stats.ItemStatistics]] | None:
    """The items every cell answered (in the first cell's order) and each cell's statistics on them."""
    shared = set.intersection(*(set(c["ids"]) for c in cells))
    ids = [i for i in cells[0]["ids"] if i in shared]
    if not ids:
        return None
    out = []
    for cell in cells:
        position = {item: k for k, item in enumerate(cell["ids"])}
        out.append(cell["stats"][[position[i] for i in ids]])
    return ids, out


def paired_deltas(store, base_run_id: str, run_id: str, tasks: list[str], *, n_boot: int = 2000,
                  seed: int = 0) -> dict[str, dict[str, Any]]:
    """``harness run``'s significance column: ``{"task/metric": {"delta", "ci_low", "ci_high", "p",
    "significant"}}`` for run ``run_id`` minus the base, per headline metric, in display units.

    The paired bootstrap of the metric itself over the test items both runs answered (``harness.stats.paired``:
    the same resamples for both runs). One trained model: the seed-to-seed variance a study adds is not in
    it. ``significant`` is the 95% interval excluding 0. Metrics without per-item statistics (METEOR) are left
    out.
    """
    from harness.results.compare import display_scale
    from harness.stats.paired import paired_bootstrap

    base, cand = run_statistics(base_run_id, tasks, store), run_statistics(run_id, tasks, store)
    out: dict[str, dict[str, Any]] = {}
    for task in tasks:
        for name, cell in base.get(task, {}).items():
            other = cand.get(task, {}).get(name)
            if other is None or "stats" not in cell or "stats" not in other:
                continue
            shared = _shared([cell, other])
            if shared is None:
                continue
            result = paired_bootstrap(item_stats.from_array(name, shared[1][0]),
                                      item_stats.from_array(name, shared[1][1]), seed=seed, n_boot=n_boot)
            scale = display_scale(name)
            low, high = _finite(result.ci_low * scale), _finite(result.ci_high * scale)
            out[f"{task}/{name}"] = {
                "delta": _finite(result.delta * scale), "ci_low": low, "ci_high": high,
                "p": _finite(result.p_value), "n_items": len(shared[0]),
                "significant": low is not None and high is not None and (low > 0 or high < 0)}
    return out


def compare(study: Study, store, *, n_boot: int = 2000, seed: int = 0, correction: str = "holm",
            alpha: float = ALPHA) -> list[dict[str, Any]]:
    """One record per (method entry, task, metric), with the keys of ``RECORD_KEYS`` (see the module doc)."""
    from harness.results.compare import display_scale

    base, per_label = _study_statistics(study, store)
    reference = study.state.get("reference")
    labels = [label for label in study.state["methods"] if label == BASE or label in per_label]
    records: list[dict[str, Any]] = []
    for task in study.state["settings"]["tasks"]:
        for metric, base_cell in base.get(task, {}).items():
            groups = {label: [s[task][metric] for _, s in per_label[label] if metric in s.get(task, {})]
                      for label in labels if label != BASE}
            groups = {label: cells for label, cells in groups.items() if cells}
            context = {"task": task, "metric": metric, "scale": display_scale(metric),
                       "higher_is_better": base_cell["higher_is_better"]}
            if "stats" not in base_cell or any("stats" not in c for cells in groups.values() for c in cells):
                note = base_cell.get("unsupported") or "no per-item statistics"
                records += _untested(labels, base_cell, groups, context, note)
                continue
            flat = [base_cell] + [c for cells in groups.values() for c in cells]
            shared = _shared(flat)
            if shared is None:
                log.warning("study %s: %s/%s: no item answered by every run", study.study_id, task, metric)
                continue
            ids, arrays = shared
            if len(ids) < len(base_cell["ids"]):
                log.warning("%s/%s: comparing the %d of %d items every run answered", task, metric, len(ids),
                            len(base_cell["ids"]))
            statistics = [item_stats.from_array(metric, a) for a in arrays]
            sizes = [1] + [len(cells) for cells in groups.values()]
            bounds = np.cumsum([0] + sizes)
            built = arms([statistics[bounds[k]:bounds[k + 1]] for k in range(len(sizes))], seed=seed, n_boot=n_boot)
            arm_of = {BASE: built[0], **{label: built[k + 1] for k, label in enumerate(groups)}}
            for label in labels:
                if label in arm_of:
                    records.append(_record(label, arm_of, reference, len(ids), context, alpha))
    _adjust(records, correction)
    return records


def _record(label: str, arm_of: dict[str, Arm], reference: str | None, n_items: int, context: dict,
            alpha: float) -> dict[str, Any]:
    scale = context["scale"]
    arm = arm_of[label]
    record: dict[str, Any] = {key: None for key in RECORD_KEYS}
    record.update(method=label, task=context["task"], metric=context["metric"], mean=arm.mean * scale,
                  sd=float(np.std(arm.values, ddof=1)) * scale if arm.n_seeds > 1 else None, n_seeds=arm.n_seeds,
                  n_items=n_items, higher_is_better=context["higher_is_better"], units="display", scale=scale)
    if label != BASE:
        versus = compare_arms(arm, arm_of[BASE], alpha=alpha)
        record.update(delta_vs_base=versus.delta * scale, ci_low=versus.ci_low * scale,
                      ci_high=versus.ci_high * scale, p_vs_base=versus.p_value, p_item_vs_base=versus.p_item,
                      item_level_only=versus.item_level_only, mde=versus.mde * scale, se=versus.se * scale,
                      se_item=versus.se_item * scale, df=_finite(versus.df), test=versus.method(),
                      seed_variance=_seed_note(versus, arm), seed_sd=_seed_sd(versus.seed_variance[0], scale))
    if reference in arm_of and label not in (reference, BASE):
        versus = compare_arms(arm, arm_of[reference], alpha=alpha)
        record.update(delta_vs_ref=versus.delta * scale, ref_ci_low=versus.ci_low * scale,
                      ref_ci_high=versus.ci_high * scale, p_vs_ref=versus.p_value, p_item_vs_ref=versus.p_item)
    return record


def _untested(labels: list[str], base_cell: dict, groups: dict[str, list[dict]], context: dict,
              note: str) -> list[dict[str, Any]]:
    """Rows of a metric without per-item statistics (METEOR): means and deltas, no test."""
    scale = context["scale"]
    out = []
    for label in labels:
        values = [base_cell["value"]] if label == BASE else [c["value"] for c in groups.get(label, [])]
        if not values:
            continue
        record: dict[str, Any] = {key: None for key in RECORD_KEYS}
        record.update(method=label, task=context["task"], metric=context["metric"],
                      mean=float(np.mean(values)) * scale, sd=float(np.std(values, ddof=1)) * scale
                      if len(values) > 1 else None, n_seeds=len(values), n_items=len(base_cell["ids"]),
                      higher_is_better=context["higher_is_better"], units="display", scale=scale,
                      test=f"none: {note}")
        if label != BASE:
            record["delta_vs_base"] = record["mean"] - base_cell["value"] * scale
        out.append(record)
    return out


def _seed_note(versus: ArmComparison, arm: Arm) -> str:
    if versus.seed_variance[0] is None:
        return "not estimated (one seed)"
    return f"estimated from {arm.n_seeds} seeds"


def _seed_sd(variance: float | None, scale: float) -> float | None:
    return None if variance is None else math.sqrt(variance) * scale


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _adjust(records: list[dict[str, Any]], correction: str) -> None:
    """Adjust every p-value of the study (vs base and vs reference) together: one family of comparisons."""
    keys = [(i, k) for i, r in enumerate(records) for k in ("p_vs_base", "p_vs_ref") if r[k] is not None]
    adjusted = adjust([records[i][k] for i, k in keys], correction)
    for (i, k), p in zip(keys, adjusted):
        records[i][f"{k}_adj"] = p
    name = f"{CORRECTION_NAMES[correction]} over {len(keys)} tests"
    for record in records:
        record["correction"] = name


def seed_group_comparison(study: Study, store, label: str, seeds_a: list[int], seeds_b: list[int], *,
                          n_boot: int = 2000, seed: int = 0, alpha: float = ALPHA, runs: dict | None = None
                          ) -> list[dict[str, Any]]:
    """One method entry's runs split into two arms by training seed (an A/A comparison when the seed groups
    are disjoint): per (task, metric), arm A minus arm B with the study's test, in display units.
    ``runs`` ({seed: statistics}, from an earlier call's ``study_runs``) saves reading them again."""
    from harness.results.compare import display_scale

    runs = runs if runs is not None else study_runs(study, store, label)
    missing = [s for s in [*seeds_a, *seeds_b] if s not in runs]
    if missing:
        raise HarnessError(f"study {study.study_id}: no finished run of {label} with seed(s) {missing}")
    out = []
    for task in study.state["settings"]["tasks"]:
        for metric in runs[seeds_a[0]].get(task, {}):
            cells = [runs[s][task][metric] for s in [*seeds_a, *seeds_b]]
            if any("stats" not in c for c in cells):
                continue
            shared = _shared(cells)
            if shared is None:
                continue
            statistics = [item_stats.from_array(metric, a) for a in shared[1]]
            arm_a, arm_b = arms([statistics[:len(seeds_a)], statistics[len(seeds_a):]], seed=seed, n_boot=n_boot)
            versus = compare_arms(arm_a, arm_b, alpha=alpha)
            scale = display_scale(metric)
            out.append({"task": task, "metric": metric, "seeds_a": list(seeds_a), "seeds_b": list(seeds_b),
                        "delta": versus.delta * scale, "ci_low": versus.ci_low * scale,
                        "ci_high": versus.ci_high * scale, "p": versus.p_value, "p_item": versus.p_item,
                        "test": versus.method()})
    return out


def study_runs(study: Study, store, label: str) -> dict[int, dict]:
    """``{training seed: per-item statistics}`` of one method entry's finished runs."""
    _, per_label = _study_statistics(study, store)
    return dict(per_label.get(label, []))


def aa_splits(seeds: list[int], per_arm: int, count: int, *, independent: bool = False,
              seed: int = 0) -> list[tuple[list[int], list[int]]]:
    """``count`` pairs of disjoint seed groups of ``per_arm`` seeds each: consecutive blocks of ``seeds`` when
    ``independent`` (no run in two pairs: needs 2 x per_arm x count seeds), else distinct random draws from the
    pool (pairs share runs, so their p-values are dependent)."""
    seeds = sorted(seeds)
    if independent:
        need = 2 * per_arm * count
        if len(seeds) < need:
            raise HarnessError(f"{count} independent A/A pairs of {per_arm} seeds per arm need {need} runs, "
                               f"the study has {len(seeds)}")
        blocks = [seeds[i:i + per_arm] for i in range(0, need, per_arm)]
        return [(blocks[2 * k], blocks[2 * k + 1]) for k in range(count)]
    if len(seeds) < 2 * per_arm:
        raise HarnessError(f"an A/A pair of {per_arm} seeds per arm needs {2 * per_arm} runs, the study has "
                           f"{len(seeds)}")
    rng = np.random.default_rng(seed)
    out: list[tuple[list[int], list[int]]] = []
    seen: set = set()
    for _ in range(1000 * count):
        if len(out) == count:
            break
        drawn = [int(s) for s in rng.permutation(seeds)[:2 * per_arm]]
        a, b = sorted(drawn[:per_arm]), sorted(drawn[per_arm:])
        key = frozenset([tuple(a), tuple(b)])
        if key not in seen:
            seen.add(key)
            out.append((a, b))
    return out


def aa_calibration(study: Study, store, label: str, *, per_arm: int = 2, pairs: int = 20, independent: bool = False,
                   n_boot: int = 2000, seed: int = 0, alpha: float = ALPHA) -> dict[str, Any]:
    """A/A calibration of the study's test: one method entry's runs split into ``pairs`` pairs of disjoint seed
    groups (the same method against itself), every headline metric tested. Under this null, p-values should be
    uniform (Kolmogorov-Smirnov) and about ``alpha`` of them below ``alpha``; the item-level test alone is
    reported beside it."""
    from harness.stats.calibration import excess_false_positives_p, uniformity_p

    runs = study_runs(study, store, label)
    splits = aa_splits(list(runs), per_arm, pairs, independent=independent, seed=seed)
    tests = [row for k, (a, b) in enumerate(splits)
             for row in seed_group_comparison(study, store, label, a, b, n_boot=n_boot, seed=seed + k, alpha=alpha,
                                              runs=runs)]
    p = [t["p"] for t in tests]
    p_item = [t["p_item"] for t in tests]
    positives = sum(x < alpha for x in p)
    return {"label": label, "runs": len(runs), "pairs": len(splits), "per_arm": per_arm, "independent": independent,
            "alpha": alpha, "tests": tests, "n_tests": len(tests), "false_positives": positives,
            "false_positive_rate": positives / max(len(tests), 1),
            "excess_p": excess_false_positives_p(positives, len(tests), alpha), "ks_p": uniformity_p(p),
            "item_only_false_positives": sum(x < alpha for x in p_item), "item_only_ks_p": uniformity_p(p_item)}


def format_rows(records: list[dict[str, Any]], reference: str | None) -> list[dict[str, Any]]:
    """Display rows (the records are in display units already), one per record."""
    rows = []
    for r in records:
        arrow = "" if r["higher_is_better"] else " (lower better)"
        rows.append({
            "task/metric": f"{r['task']}/{r['metric']}{arrow}",
            "method": r["method"],
            "mean ± sd": _num(r["mean"]) + ("" if r["sd"] is None else f" ± {r['sd']:.1f}"),
            "Δ base [95% CI]": _delta_with_bounds(r["delta_vs_base"], r["ci_low"], r["ci_high"]),
            "p (adj.)": _p_pair(r["p_vs_base"], r["p_vs_base_adj"]),
            "MDE": _num(r["mde"]),
            f"Δ {reference} (p, adj.)": _delta(r["delta_vs_ref"], r["p_vs_ref"], r["p_vs_ref_adj"]),
            "seeds": r["n_seeds"],
            "items": r["n_items"],
            "note": _note(r),
        })
    return rows


def _note(record: dict[str, Any]) -> str:
    notes = []
    if record.get("item_level_only"):
        notes.append("item-level only")
    if record.get("delta_vs_base") is not None and (record.get("seed_variance") or "").startswith("not estimated"):
        notes.append("seed var. not estimated")
    if (record.get("test") or "").startswith("none"):
        notes.append("no test")
    return "; ".join(notes) or "-"


def _num(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def _p(value) -> str:
    return "-" if value is None else f"{value:.2g}"


def _p_pair(p, adjusted) -> str:
    return "-" if p is None else f"{_p(p)} ({_p(adjusted)})"


def _delta_with_bounds(delta, low, high) -> str:
    if delta is None:
        return "-"
    return f"{delta:+.1f}" if low is None else f"{delta:+.1f} [{low:+.1f}, {high:+.1f}]"


def _delta(delta, p, adjusted) -> str:
    if delta is None:
        return "-"
    return f"{delta:+.1f}" if p is None else f"{delta:+.1f} ({_p(p)}, {_p(adjusted)})"


def to_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no results)\n"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def json_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with NaN and infinities turned into None (strict JSON)."""
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()} for r in records]
