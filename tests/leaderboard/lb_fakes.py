"""Fixtures: a results store seeded with clearly fake runs, and submission files.

Every number here is synthetic test data (models are named ``fake-*``); none is a real result.
"""

from __future__ import annotations

import json
import random
import socket
from pathlib import Path

import pytest

from harness.results.store import ResultRow, ResultsStore, RunRecord

VQA_TASKS = ("vqa_rad", "slake")
REPORT_TASKS = ("iu_xray",)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_rows(rng: random.Random, shift: float) -> list[ResultRow]:
    rows = []
    for task in VQA_TASKS:
        for metric in ("closed_accuracy", "open_recall"):
            value = min(0.95, 0.5 + shift + rng.uniform(0, 0.05))
            rows.append(ResultRow(task, metric, value, value - 0.03, value + 0.03, 200))
    for task in REPORT_TASKS:
        for metric, base in (("bleu", 0.2), ("rouge_l", 0.3), ("cider", 0.4), ("chexpert_f1_micro", 0.3)):
            value = base + shift / 2 + rng.uniform(0, 0.02)
            rows.append(ResultRow(task, metric, value, value - 0.02, value + 0.02, 100))
        value = 0.3 - shift / 2
        rows.append(ResultRow(task, "hallucination_rate", value, value - 0.02, value + 0.02, 100, False))
    return rows


FAKE_RUNS = (
    # model, base model, method, model type, shift over the base
    ("fake-base-7b", "fake-base-7b", None, "llava", 0.0),
    ("fake-base-7b-dpo", "fake-base-7b", "dpo", "llava", 0.04),
    ("fake-base-7b-mmedpo", "fake-base-7b", "mmedpo", "llava", 0.08),
    ("fake-small-2b", "fake-small-2b", None, "qwen2_vl", -0.1),
    ("fake-small-2b-dpo", "fake-small-2b", "dpo", "qwen2_vl", -0.07),
)


def seed_store(path: Path, predictions_root: Path | None = None) -> ResultsStore:
    store = ResultsStore(path)
    rng = random.Random(0)
    base_ids = {m: f"fake-run-{i}" for i, (m, _, method, _, _) in enumerate(FAKE_RUNS) if method is None}
    for i, (model, base, method, kind, shift) in enumerate(FAKE_RUNS):
        provenance = {"role": "base"} if method is None else {"role": "method", "base_run_id": base_ids[base]}
        record = RunRecord(model=model, base_model=base, method=method, model_type=kind,
                           config={"note": "synthetic test data", "seed": i, **provenance}, seed=i,
                           run_id=f"fake-run-{i}", created_at=f"2025-01-0{i + 1}T00:00:00+00:00")
        if predictions_root is not None and i == 2:
            record.predictions_dir = str(write_fake_predictions(predictions_root / record.run_id))
        store.add_run(record, fake_rows(rng, shift))
    return store


def write_fake_predictions(run_dir: Path) -> Path:
    """A predictions folder in the evaluation engine's layout, with one image and one wrong answer."""
    from PIL import Image

    pred_dir = run_dir / "predictions"
    pred_dir.mkdir(parents=True)
    Image.new("RGB", (32, 32), (200, 30, 30)).save(run_dir / "fake_scan.png")
    rows = [
        {"id": "q1", "question": "Is there a fake lesion?", "answer_type": "closed", "prediction": "Yes.",
         "reference": "yes", "metadata": {"image": "fake_scan.png"}},
        {"id": "q2", "question": "Is the fake heart enlarged?", "answer_type": "closed", "prediction": "no",
         "reference": "yes", "metadata": {"image": "fake_scan.png"}},
        {"id": "q3", "question": "Which fake organ?", "answer_type": "open", "prediction": "the left lung",
         "reference": "lung", "metadata": {}},
    ]
    (pred_dir / "vqa_rad.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"id": "partial', "utf-8")
    (pred_dir / "vqa_rad.part-0.jsonl").write_text("", "utf-8")
    return run_dir


def submission(model: str, *, value: float = 0.6, method: str = "dpo", base: str = "fake-base-7b",
               task: str = "vqa_rad", extra: dict | None = None) -> dict:
    """A valid ``harness-results/1`` payload with one run (synthetic)."""
    run = {"model": model, "base_model": base, "method": method, "model_type": "llava",
           "config": {"note": "synthetic test submission"}, "versions": {"torch": "0.0-test"}, "seed": 0,
           "results": [{"task": task, "metric": "closed_accuracy", "value": value, "ci_low": value - 0.05,
                        "ci_high": value + 0.05, "n": 272, "higher_is_better": True},
                       {"task": task, "metric": "open_recall", "value": value / 2, "n": 179}]}
    run.update(extra or {})
    return {"format": "harness-results/1", "runs": [run]}


@pytest.fixture
def store(tmp_path) -> ResultsStore:
    return seed_store(tmp_path / "results.sqlite", tmp_path / "runs")


def write_fake_study(root: Path, study_id: str = "fake-study-1", eval_limit: int | None = None) -> Path:
    """A study folder as ``harness study`` writes it (study.json + results.json records); synthetic numbers."""
    folder = root / study_id
    folder.mkdir(parents=True)
    state = {"study_id": study_id, "created_at": "2025-02-01T00:00:00+00:00",
             "settings": {"model": "/home/someone/models/fake-base", "tasks": ["synth_vqa", "synth_report"],
                          "eval_split": "test", "eval_limit": eval_limit, "train_limit": None},
             "base_run_id": "fake-run-0", "methods": ["base", "dpo", "mmedpo"], "seeds": [0, 1, 2],
             "reference": "dpo", "runs": []}

    def record(method, task, metric, mean, sd, d_base, p_base, d_ref, p_ref, better=True):
        """Natural-unit arguments; the record is in display units (x100), as harness study writes it."""
        ci = None if d_base is None else (100 * d_base - 2, 100 * d_base + 2)
        ref_ci = None if d_ref is None else (100 * d_ref - 2, 100 * d_ref + 2)
        scaled = {k: None if v is None else 100 * v for k, v in
                  (("mean", mean), ("sd", sd), ("delta_vs_base", d_base), ("delta_vs_ref", d_ref))}
        return {"method": method, "task": task, "metric": metric, **scaled,
                "n_seeds": 1 if method == "base" else 3, "n_items": 500, "p_vs_base": p_base,
                "p_vs_base_adj": None if p_base is None else min(1.0, 6 * p_base), "p_vs_ref": p_ref,
                "p_vs_ref_adj": None if p_ref is None else min(1.0, 6 * p_ref),
                "mde": None if d_base is None else 3.0, "ci_low": ci and ci[0], "ci_high": ci and ci[1],
                "ref_ci_low": ref_ci and ref_ci[0], "ref_ci_high": ref_ci and ref_ci[1], "higher_is_better": better,
                "item_level_only": False, "units": "display", "scale": 100.0}

    records = [
        record("base", "synth_vqa", "closed_accuracy", 0.70, None, None, None, -0.05, 0.001),
        record("dpo", "synth_vqa", "closed_accuracy", 0.75, 0.01, 0.05, 0.001, None, None),
        record("mmedpo", "synth_vqa", "closed_accuracy", 0.74, 0.02, 0.04, 0.03, -0.01, 0.4),
        record("base", "synth_report", "false_finding_rate", 0.20, None, None, None, None, None, better=False),
        record("dpo", "synth_report", "false_finding_rate", 0.27, 0.01, 0.07, 0.002, None, None, better=False),
        record("mmedpo", "synth_report", "false_finding_rate", 0.15, 0.01, -0.05, 0.004, -0.12, 0.001, better=False),
    ]
    (folder / "study.json").write_text(json.dumps(state), "utf-8")
    (folder / "results.json").write_text(json.dumps(records), "utf-8")
    return folder
