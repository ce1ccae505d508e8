"""Scoring the CheXpert-style labeler against hand-labelled report sentences.

The validation set (``tests/data/labeler_validation/iu_xray_sentences.jsonl``, rules in ``RULES.md`` beside
it) holds one JSON object per line: ``{"sentence", "source", "labels": {observation: 1 | 0 | -1}}``, with
unmentioned observations left out. Each sentence is labelled on its own with
:func:`harness.metrics.chexpert_labeler.label_report` ("No Finding" is a per-report derivation and is not
scored). A *mention* is a (sentence, observation) pair that the hand labels or the labeler name; it is right
when both give the same label. Mention accuracy = right mentions / all mentions, so a missed mention and an
invented one both count as wrong.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import DataError
from harness.metrics.chexpert_labeler import NEGATIVE, OBSERVATIONS, POSITIVE, UNCERTAIN, label_report

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


def read_validation_set(path: str | Path) -> list[dict]:
    path = Path(path)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"not JSON ({exc.msg})", record=f"line {number}") from None
        labels = row.get("labels")
        if not isinstance(row.get("sentence"), str) or not isinstance(labels, dict):
            raise DataError(path, "expected {sentence: str, labels: {observation: label}}", record=f"line {number}")
        for obs, value in labels.items():
            if obs not in SCORED or value not in CLASSES:
                raise DataError(path, f"bad label {obs!r}: {value!r}", record=f"line {number}", field="labels")
        rows.append(row)
    return rows


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
