"""Scoring the CheXpert-style labeler against hand-labelled IU-Xray sentences and whole reports.

Whole reports (``iu_xray_reports.jsonl``, :func:`read_report_set`, :func:`score_reports`): per observation,
report-level precision / recall / F1 of positive-vs-rest, and the macro-F1 over the pathologies with at least
:data:`MIN_POSITIVES` hand-labelled positive reports, per part ("tune": the rules were fitted on it;
"heldout": scored once, after). Sentences, below:

The validation set (``tests/data/labeler_validation/iu_xray_sentences.jsonl``, rules in ``RULES.md`` beside
it) holds one JSON object per line: ``{"sentence", "source", "labels": {observation: 1 | 0 | -1}}``, with
unmentioned observations left out. Each sentence is labelled on its own with
:func:`harness.findings.labeler.label_report` ("No Finding" is a per-report derivation and is not
scored). A *mention* is a (sentence, observation) pair that the hand labels or the labeler name; it is right
when both give the same label. Mention accuracy = right mentions / all mentions, so a missed mention and an
invented one both count as wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.errors import DataError
from harness.core.io import read_jsonl_lines
from harness.findings.labeler import NEGATIVE, OBSERVATIONS, POSITIVE, UNCERTAIN, label_report

CLASSES = {POSITIVE: "positive", NEGATIVE: "negative", UNCERTAIN: "uncertain"}
SCORED = tuple(o for o in OBSERVATIONS if o != "No Finding")


@dataclass
class Validation:
    sentences: int = 0
    mentions: int = 0
    right: int = 0
    # (gold, predicted) label counts; None = blank
    confusion: Counter = field(default_factory=Counter)
    by_observation: dict[str, Counter] = field(default_factory=dict)
    errors: list[tuple[str, str, int | None, int | None]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.right / self.mentions if self.mentions else float("nan")

    def class_scores(self) -> dict[str, tuple[float, float, int]]:
        """label class -> (precision, recall, hand-labelled count)."""
        out = {}
        for value, name in CLASSES.items():
            predicted = sum(n for (g, p), n in self.confusion.items() if p == value)
            gold = sum(n for (g, p), n in self.confusion.items() if g == value)
            hit = self.confusion[(value, value)]
            out[name] = (hit / predicted if predicted else float("nan"), hit / gold if gold else float("nan"), gold)
        return out


def _read_labelled(path: str | Path, text: str, shape: str, classes: dict, check: Callable | None = None) -> list[dict]:
    """The hand-labelled JSON Lines rows of ``path``: each an object with a ``text`` string and ``labels``
    ``{observation: label in classes}`` (and whatever ``check(path, row, where)`` requires); else a
    DataError naming the line."""
    path = Path(path)
    rows = []
    for number, row in read_jsonl_lines(path):
        where = f"line {number}"
        if not isinstance(row, dict) or not isinstance(row.get(text), str) or not isinstance(row.get("labels"), dict):
            raise DataError(path, f"expected {shape}", record=where)
        if check is not None:
            check(path, row, where)
        for obs, value in row["labels"].items():
            if obs not in SCORED or value not in classes:
                raise DataError(path, f"bad label {obs!r}: {value!r}", record=where, field="labels")
        rows.append(row)
    return rows


def read_validation_set(path: str | Path) -> list[dict]:
    """Hand-labelled sentences: ``{"sentence", "labels": {obs: label}}``."""
    return _read_labelled(path, "sentence", "{sentence: str, labels: {observation: label}}", CLASSES)


def validate(rows: list[dict]) -> Validation:
    result = Validation(by_observation={o: Counter() for o in SCORED})
    for row in rows:
        result.sentences += 1
        gold = row["labels"]
        predicted = {o: v for o, v in label_report(row["sentence"]).items() if o in SCORED and v is not None}
        for obs in sorted(set(gold) | set(predicted)):
            g, p = gold.get(obs), predicted.get(obs)
            result.mentions += 1
            result.confusion[(g, p)] += 1
            result.by_observation[obs]["mentions"] += 1
            if g == p:
                result.right += 1
                result.by_observation[obs]["right"] += 1
            else:
                result.errors.append((row["sentence"], obs, g, p))
    return result


def format_report(result: Validation, *, show_errors: bool = True) -> str:
    def pct(x: float) -> str:
        return "  n/a" if x != x else f"{100 * x:5.1f}"

    lines = [f"sentences {result.sentences}, mentions {result.mentions}, right {result.right}: "
             f"mention accuracy {pct(result.accuracy)}%", "", "class      precision  recall  hand-labelled"]
    for name, (precision, recall, gold) in result.class_scores().items():
        lines.append(f"{name:<10} {pct(precision):>9}  {pct(recall):>6}  {gold:>13}")
    lines += ["", "observation                 mentions  right  accuracy"]
    for obs, counts in result.by_observation.items():
        if counts["mentions"]:
            lines.append(f"{obs:<27} {counts['mentions']:>8}  {counts['right']:>5}  "
                         f"{pct(counts['right'] / counts['mentions']):>8}")
    if show_errors and result.errors:
        names = {None: "blank", **CLASSES}
        lines += ["", "wrong mentions (hand -> labeler):"]
        lines += [f"  {obs}: {names[g]} -> {names[p]}  | {sentence}" for sentence, obs, g, p in result.errors]
    return "\n".join(lines)


# --- Whole reports (tests/data/labeler_validation/iu_xray_reports.jsonl) ---------------------------------------

REPORT_LABELS = {"positive": POSITIVE, "negative": NEGATIVE, "uncertain": UNCERTAIN}
PARTS = ("tune", "heldout")
# The pathologies: every scored observation except Support Devices (a device is not a pathology).
PATHOLOGIES = tuple(o for o in SCORED if o != "Support Devices")
# A pathology enters a part's macro-F1 when at least this many of the part's reports are hand-labelled positive:
# with fewer, one report moves its F1 by a third or more, and the macro average would mostly measure that noise.
MIN_POSITIVES = 5


def _check_part(path: Path, row: dict, where: str) -> None:
    if row.get("split") not in PARTS:
        raise DataError(path, f"split must be one of {PARTS}, not {row.get('split')!r}", record=where, field="split")


def read_report_set(path: str | Path) -> list[dict]:
    """Hand-labelled whole reports: ``{"id", "split": "tune" | "heldout", "report", "labels": {obs: label}}``."""
    return _read_labelled(path, "report", "{id, split, report: str, labels: {observation: label}}", REPORT_LABELS,
                          _check_part)


@dataclass
class ReportScores:
    """Report-level agreement of the labeler with the hand labels on one part of the set.

    A report is *positive* for an observation when its label is positive; uncertain, negative and absent are
    not (positive-vs-rest, the reading of the clinical-efficacy metrics). With ``uncertain_positive`` an
    uncertain label counts as positive on both sides (CheXpert's "U-Ones").
    """

    part: str
    reports: int
    uncertain_positive: bool
    counts: dict[str, tuple[int, int, int]]  # observation -> (TP, FP, FN)
    gold_positive: dict[str, int]
    macro_observations: tuple[str, ...]
    macro_f1: float
    ci: tuple[float, float]
    errors: list[tuple[str, str, int | None, int | None]] = field(default_factory=list)  # (id, obs, hand, labeler)

    def f1(self, obs: str) -> float:
        tp, fp, fn = self.counts[obs]
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def score_reports(rows: list[dict], part: str, *, uncertain_positive: bool = False, seed: int = 0,
                  n_boot: int = 2000, labeler: Callable[[str], dict] = label_report) -> ReportScores:
    """Per-observation TP/FP/FN over the part's reports, and the macro-F1 over :data:`PATHOLOGIES` with at
    least :data:`MIN_POSITIVES` hand-labelled positives, with a 95% percentile bootstrap interval over reports
    (the included pathologies held fixed)."""
    import numpy as np

    from harness.stats.intervals import bootstrap_interval

    chosen = [r for r in rows if r["split"] == part]
    yes = {POSITIVE, UNCERTAIN} if uncertain_positive else {POSITIVE}
    stats = np.zeros((len(chosen), len(SCORED), 3))
    errors = []
    for i, row in enumerate(chosen):
        gold = {o: REPORT_LABELS[v] for o, v in row["labels"].items()}
        predicted = labeler(row["report"])
        for j, obs in enumerate(SCORED):
            g, p = gold.get(obs) in yes, predicted[obs] in yes
            stats[i, j] = (g and p, p and not g, g and not p)
            if g != p:
                errors.append((row.get("id", f"#{i}"), obs, gold.get(obs), predicted[obs]))
    totals = stats.sum(axis=0)
    counts = {obs: tuple(int(x) for x in totals[j]) for j, obs in enumerate(SCORED)}
    gold_positive = {obs: counts[obs][0] + counts[obs][2] for obs in SCORED}
    included = tuple(o for o in PATHOLOGIES if gold_positive[o] >= MIN_POSITIVES)
    cols = [SCORED.index(o) for o in included]

    def macro(sums: np.ndarray) -> np.ndarray:
        tp, fp, fn = sums[..., cols, 0], sums[..., cols, 1], sums[..., cols, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan)
        return np.nanmean(f1, axis=-1) if cols else np.full(sums.shape[:-2], np.nan)

    value = float(macro(totals[None])[0]) if chosen and cols else float("nan")
    ci = bootstrap_interval(stats, macro, seed=seed, n_boot=n_boot) if chosen and cols else (float("nan"),) * 2
    return ReportScores(part=part, reports=len(chosen), uncertain_positive=uncertain_positive, counts=counts,
                        gold_positive=gold_positive, macro_observations=included, macro_f1=value, ci=ci,
                        errors=errors)


def format_report_scores(scores: ReportScores, *, show_errors: bool = False) -> str:
    def num(x: float) -> str:
        return "  n/a" if x != x else f"{x:.3f}"

    rule = "positive or uncertain" if scores.uncertain_positive else "positive (uncertain counts as not positive)"
    lines = [f"part {scores.part}: {scores.reports} reports; a report is positive for an observation when it is "
             f"{rule}",
             f"macro-F1 over {len(scores.macro_observations)} pathologies with >= {MIN_POSITIVES} hand-labelled "
             f"positives: {num(scores.macro_f1)} (95% bootstrap CI {num(scores.ci[0])}-{num(scores.ci[1])})", "",
             "observation                 hand+   TP   FP   FN  precision  recall     F1  in macro"]
    for obs in SCORED:
        tp, fp, fn = scores.counts[obs]
        if not tp + fp + fn:
            continue
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / (tp + fn) if tp + fn else float("nan")
        mark = "yes" if obs in scores.macro_observations else ""
        lines.append(f"{obs:<27} {scores.gold_positive[obs]:>5} {tp:>4} {fp:>4} {fn:>4}  {num(precision):>9}  "
                     f"{num(recall):>6}  {num(scores.f1(obs)):>5}  {mark}")
    if show_errors and scores.errors:
        names = {None: "absent", **CLASSES}
        lines += ["", f"disagreements on part {scores.part} (hand -> labeler):"]
        lines += [f"  {rid}  {obs}: {names[g]} -> {names[p]}" for rid, obs, g, p in scores.errors]
    return "\n".join(lines)
