"""Factuality probes: hallucination questions with a known "no", and lesion-ablation consistency.

- ``synth_probe`` (a task, so ``harness eval``/``regress`` treat it like any other): for every case of the
  synthetic suite one closed question about a lesion kind the image does NOT show, generated from the
  ground truth ("Is there a pneumothorax?" on a film with only a nodule); the right answer is always "no",
  so its ``closed_accuracy`` is one minus the model's hallucination rate on absent findings.
- ``lesion_ablation_consistency``: the lesion region (the task's ``mask``) is diffusion-noised
  (``harness.imaging.diffusion_noise`` on the linear DDPM schedule, which keeps 28% of the signal at step
  500, so the lesion is all but erased) and each lesion-dependent question is asked
  again. Lesion-dependent: a closed question whose reference is "yes" about a finding inside the mask. The
  score is the share of those the model answered right on the intact image whose yes/no answer changes
  when the lesion is destroyed (1.0: every right answer came from the lesion; 0.0: none did).
- For reports the factuality metrics are the task metrics ``chexpert_f1_*`` (clinical efficacy) and
  ``hallucination_rate`` (findings asserted that the reference does not hold).
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.tasks.synth import KINDS, SynthTask, _article, _lesion_columns

log = logging.getLogger(__name__)

LESION_QUESTION_TYPES = ("presence", "side", "abnormality")


@dataclass
class SynthProbeTask(SynthTask):
    """One hallucination probe per synthetic case: a question about an absent lesion kind (answer "no")."""

    def _row(self, folder: Path, case) -> dict[str, Any]:
        present = {lesion.kind for lesion in case.lesions}
        absent = [kind for kind in KINDS if kind not in present]
        kind = absent[zlib.crc32(case.id.encode()) % len(absent)]  # stable across runs and platforms
        return {
            "id": case.id,
            "image": str(folder / case.image),
            "image_path": case.image,
            "question": f"Is there {_article(kind)} {kind}?",
            "answer": "no",
            "answer_type": "closed",
            "mask": str(folder / case.mask),
            "question_type": "hallucination_probe",
            **_lesion_columns(case),
        }


SYNTH_PROBE = SynthProbeTask(
    name="synth_probe",
    family="vqa",
    metrics=("closed_accuracy",),
    description="Hallucination probes: closed questions about lesion kinds the synthetic film does not show (answer no).",
)


@dataclass
class ConsistencyResult:
    value: float  # share of lesion-dependent, correctly answered items whose answer changed
    n_lesion_dependent: int
    n_correct: int
    n_changed: int
    items: list[dict[str, Any]]


def lesion_dependent(row: dict[str, Any], mask) -> bool:
    if row["answer_type"] != "closed" or str(row["answer"]).strip().lower() != "yes" or mask is None:
        return False
    if row.get("question_type") and row["question_type"] not in LESION_QUESTION_TYPES:
        return False
    return bool(np.asarray(mask.convert("L")).max() > 0)


def lesion_ablation_consistency(model, task: str = "synth_vqa", *, split: str = "test", limit: int | None = None,
                                data_dir: str | Path | None = None, step: int = 500, seed: int = 0,
                                batch_size: int = 16, max_new_tokens: int = 8) -> ConsistencyResult:
    """Ask each lesion-dependent question on the intact and the lesion-noised image; count changed answers."""
    from tqdm.auto import tqdm

    from harness.errors import HarnessError
    from harness.imaging import diffusion_noise
    from harness.metrics.vqa import read_yes_no
    from harness.models.base import GenerationConfig
    from harness.tasks import get_task

    task_obj = get_task(task)
    dataset = task_obj.load(split, data_dir=data_dir)
    if "mask" not in dataset.column_names:
        raise HarnessError(f"task '{task}' has no lesion masks: the ablation probe needs a 'mask' column")
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    chosen = [i for i, row in enumerate(dataset) if lesion_dependent(row, row["mask"])]
    items = []
    config = GenerationConfig(max_new_tokens=max_new_tokens)
    for start in tqdm(range(0, len(chosen), batch_size), desc=f"{task} lesion ablation", unit="batch"):
        rows = [dataset[i] for i in chosen[start:start + batch_size]]
        prompts = [task_obj.prompt(row) for row in rows]
        intact = [row["image"].convert("RGB") for row in rows]
        # the linear DDPM schedule keeps 28% of the lesion's signal at step 500 (the sigmoid default keeps 86%):
        # the probe asks whether answers depend on the lesion, so the lesion must be all but erased
        noised = [diffusion_noise(img, np.asarray(row["mask"].convert("L"), dtype=float) / 255.0, step=step,
                                  schedule="linear", seed=seed + zlib.crc32(str(row["id"]).encode()))
                  for img, row in zip(intact, rows)]
        before = model.generate(intact, prompts, config)
        after = model.generate(noised, prompts, config)
        for row, a, b in zip(rows, before, after):
            items.append({"id": str(row["id"]), "question": row["question"], "intact": a, "noised": b,
                          "correct": read_yes_no(a) == "yes", "changed": read_yes_no(a) != read_yes_no(b)})
    correct = [it for it in items if it["correct"]]
    changed = sum(it["changed"] for it in correct)
    value = changed / len(correct) if correct else float("nan")
    return ConsistencyResult(value, len(items), len(correct), changed, items)
