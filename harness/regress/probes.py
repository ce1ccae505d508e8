"""Factuality probes: POPE-style probe sets of present and absent findings, and lesion-ablation consistency.

- Probe sets (:func:`build_probes`, ``harness probes build``, and the registered ``synth_probe`` task):
  from any task whose rows carry labelled findings (a ``boxes`` column of ``{label, bbox[, finding]}``:
  the synthetic suite's lesions, SLAKE's detection boxes, where only ``finding`` boxes count), POPE's
  recipe (Li et al., 2023): for each image with at least one finding, up to ``per_image`` "Is there a X?"
  questions about findings it shows (answer "yes") and as many about findings it does not show (answer
  "no"), under three negative samplings, each balanced on its own:
  ``random`` (absent labels drawn uniformly), ``popular`` (the most frequent labels of the set that the
  image lacks) and ``adversarial`` (the labels that co-occur most often with the image's own findings).
  Scored with ``pope_accuracy``, ``pope_precision``, ``pope_recall``, ``pope_f1``, ``pope_yes_ratio`` and
  ``pope_yes_bias`` (:mod:`harness.regress.pope`), so a model answering "no" to everything scores F1 0, and
  one answering "yes" to everything a yes-ratio of 1 and a yes-bias of 0.5; the gate tests accuracy and the
  yes-bias.
- ``lesion_ablation_consistency``: the lesion region (the task's ``mask``) is diffusion-noised
  (``harness.imaging.diffusion_noise`` on the linear DDPM schedule, which keeps 28% of the signal at step
  500, so the lesion is all but erased) and each lesion-dependent question is asked
  again. Lesion-dependent: a closed question whose reference is "yes" about a finding inside the mask. The
  score is the share of those the model answered right on the intact image whose yes/no answer changes
  when the lesion is destroyed (1.0: every right answer came from the lesion; 0.0: none did).
- For reports the factuality metrics are the task metrics ``chexpert_f1_*`` / ``finding_*`` and
  ``hallucination_rate``, gated with a coverage metric (``harness.regress.compare``).
"""

from __future__ import annotations

import json
import logging
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import DataError, HarnessError
from harness.tasks.base import Task

log = logging.getLogger(__name__)

LESION_QUESTION_TYPES = ("presence", "side", "abnormality")
SETTINGS = ("random", "popular", "adversarial")
POPE_METRIC_NAMES = ("pope_f1", "pope_accuracy", "pope_precision", "pope_recall", "pope_yes_ratio", "pope_yes_bias")


def finding_labels(boxes: object, *, where: str = "") -> list[str]:
    """The distinct finding labels of one row's ``boxes`` JSON (boxes flagged ``finding: false`` are organs)."""
    try:
        items = json.loads(boxes) if isinstance(boxes, str) else (boxes or [])
    except json.JSONDecodeError as exc:
        raise DataError(where or "boxes", f"not JSON: {exc.msg}", field="boxes") from None
    if not isinstance(items, list):
        raise DataError(where or "boxes", "expected a JSON list of {label, bbox}", field="boxes")
    labels = [str(b["label"]).strip().lower() for b in items if isinstance(b, dict) and b.get("label")
              and b.get("finding", True)]
    return sorted(set(labels))


def _question(label: str) -> str:
    return f"Is there {'an' if label[0] in 'aeiou' else 'a'} {label}?"


def build_probes(rows: Iterable[dict[str, Any]], *, per_image: int = 3, seed: int = 0,
                 settings: Sequence[str] = SETTINGS) -> list[dict[str, Any]]:
    """Balanced present/absent probes per image and negative setting (rows need ``id``, ``image``, ``boxes``).

    ``image`` is passed through (a path or an image); the output rows carry ``probe_setting``,
    ``probe_label`` and ``source_id``. Deterministic: the same rows and seed give the same probes.
    """
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise HarnessError(f"unknown probe setting '{unknown[0]}' (settings: {', '.join(SETTINGS)})")
    images = [(row, finding_labels(row.get("boxes"), where=f"row {row.get('id')}")) for row in rows]
    frequency = Counter(label for _, labels in images for label in labels)
    if len(frequency) < 2:
        raise HarnessError("a probe set needs at least two distinct finding labels in the task's boxes "
                           f"(found {len(frequency)}): nothing to ask about as absent")
    cooccur: dict[str, Counter] = {label: Counter() for label in frequency}
    for _, labels in images:
        for a in labels:
            cooccur[a].update(b for b in labels if b != a)
    vocabulary = sorted(frequency)
    probes = []
    for row, present in images:
        if not present:
            continue
        absent = [label for label in vocabulary if label not in present]
        rng = np.random.default_rng([seed, zlib.crc32(str(row["id"]).encode())])
        chosen = sorted(present, key=lambda lab: (-frequency[lab], lab))[:per_image]
        k = min(len(chosen), len(absent))
        negatives = {
            "random": [absent[i] for i in sorted(rng.choice(len(absent), size=k, replace=False))],
            "popular": sorted(absent, key=lambda lab: (-frequency[lab], lab))[:k],
            "adversarial": sorted(absent, key=lambda lab: (-sum(cooccur[p][lab] for p in present),
                                                           -frequency[lab], lab))[:k],
        }
        for setting in settings:
            for answer, labels in (("yes", chosen[:k]), ("no", negatives[setting])):
                for label in labels:
                    probes.append({"id": f"{row['id']}:{setting}:{label}", "source_id": str(row["id"]),
                                   "image": row["image"], "question": _question(label), "answer": answer,
                                   "answer_type": "closed", "question_type": f"pope_{setting}",
                                   "probe_setting": setting, "probe_label": label})
    if not probes:
        raise HarnessError("no image has a labelled finding: nothing to probe")
    return probes


def source_rows(task: str, split: str = "test", *, data_dir: str | Path | None = None, limit: int | None = None,
                **options: Any) -> list[dict[str, Any]]:
    """``id``, image path and ``boxes`` of each row of a labelled task (images are not decoded)."""
    import datasets

    from harness.tasks import get_task

    dataset = get_task(task).load(split, data_dir=data_dir, **options)
    if "boxes" not in dataset.column_names:
        raise HarnessError(f"task '{task}' has no labelled findings (no 'boxes' column): it cannot give a probe set")
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    raw = dataset.cast_column("image", datasets.Image(decode=False))
    rows, seen = [], set()
    for row in raw.select_columns(["id", "image", "boxes"]):
        path = (row["image"] or {}).get("path")
        if not path:
            raise DataError(task, "an image has no file path: probe sets refer to images by path", record=row["id"],
                            field="image")
        if path in seen:  # several questions on one image: one image, one set of probes
            continue
        seen.add(path)
        rows.append({"id": row["id"], "image": path, "boxes": row["boxes"]})
    return rows


@dataclass
class ProbeTask(Task):
    """A POPE-style probe set built at load time from a labelled ``source`` task (see the module doc)."""

    source: str = ""
    per_image: int = 3
    probe_seed: int = 0

    def data_dir(self, data_dir: str | Path | None = None) -> Path | None:
        from harness.tasks import get_task

        return get_task(self.source).data_dir(data_dir)

    def require_data_dir(self, data_dir: str | Path | None = None) -> Path:
        from harness.tasks import get_task

        return get_task(self.source).require_data_dir(data_dir)

    def _load(self, split: str, data_dir: str | Path | None, **options: Any):
        import datasets

        probes = build_probes(source_rows(self.source, split, data_dir=data_dir, **options),
                              per_image=self.per_image, seed=self.probe_seed)
        features = datasets.Features({name: datasets.Value("string") for name in probes[0] if name != "image"})
        features["image"] = datasets.Image()
        columns = {name: [p[name] for p in probes] for name in features}
        return datasets.Dataset.from_dict(columns, features=features)


SYNTH_PROBE = ProbeTask(
    name="synth_probe",
    family="vqa",
    version="2.0",  # 1.0 asked about absent findings only
    source="synth_vqa",
    splits=("train", "test"),
    options={"test_size": 200},  # the synthetic suite's cases probed (about 600 probes per setting pass)
    metrics=POPE_METRIC_NAMES,
    description="POPE-style probes on the synthetic suite: present and absent lesion kinds, balanced, "
                "random/popular/adversarial negatives.",
)
SLAKE_PROBE = ProbeTask(
    name="slake_probe",
    family="vqa",
    version="1.0",
    source="slake",
    folder="slake",
    splits=("train", "test"),
    metrics=POPE_METRIC_NAMES,
    description="POPE-style probes from SLAKE's detection boxes (finding boxes only).",
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

    from harness.images import to_rgb
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
        intact = [to_rgb(row["image"]) for row in rows]
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
