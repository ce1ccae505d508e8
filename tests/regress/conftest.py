"""Fixtures for the regression tests: predictions files of simulated models on the real VQA-RAD items.

``sampled_predictions(items, p_correct, seed)`` plays a model that answers item i right with probability
``p_correct[i]`` (independently per evaluation, like sampling-based decoding under a new seed): two calls
with the same ``p_correct`` and different seeds are two honest evaluations of the same model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest


def _flip(answer: str) -> str:
    return "no" if answer.strip().lower() == "yes" else "yes"


def sampled_predictions(items: list[dict], p_correct: np.ndarray, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    right = rng.random(len(items)) < p_correct
    return [{"task": it["task"], "id": it["id"], "question": it["question"], "answer_type": it["answer_type"],
             "prediction": it["answer"] if ok else _flip(it["answer"]), "reference": it["answer"], "metadata": {}}
            for it, ok in zip(items, right)]


def write_predictions(path, records) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def closed_items(shared_data) -> list[dict]:
    """The closed (yes/no) questions of the real VQA-RAD test set, as plain rows."""
    raw = json.loads((shared_data / "vqa_rad" / "testset.json").read_text(encoding="utf-8"))
    items = []
    for row in raw:
        answer = str(row["answer"]).strip().lower()
        if str(row["answer_type"]).strip().upper() == "CLOSED" and answer in ("yes", "no"):
            items.append({"task": "vqa_rad", "id": str(row["qid"]), "question": row["question"],
                          "answer": answer, "answer_type": "closed"})
    return items


@pytest.fixture(scope="session")
def item_difficulty(closed_items) -> np.ndarray:
    """Per-item probability that the simulated model is right (mostly near 0 or 1, like a sampled model that is sure of most items)."""
    return np.random.default_rng(1234).beta(0.6, 0.3, size=len(closed_items))


@pytest.fixture(scope="session")
def make_files(closed_items):
    """``make_files(folder, p_base, p_cand, seed_base, seed_cand)`` -> (baseline file, candidate file)."""

    def make(folder, p_base, p_cand, seed_base, seed_cand):
        base = write_predictions(folder / f"base{seed_base}" / "vqa_rad.jsonl",
                                 sampled_predictions(closed_items, p_base, seed_base))
        cand = write_predictions(folder / f"cand{seed_cand}" / "vqa_rad.jsonl",
                                 sampled_predictions(closed_items, p_cand, seed_cand))
        return base, cand

    return make


@pytest.fixture(scope="session")
def sample_records():
    return sampled_predictions
