"""The default text pairs: the ground truth preferred over a verified hallucination of it, same image.

Every method without a pair builder of its own trains on these (DPO and its relatives, as in the MMedPO
paper's DPO baseline: ground truth vs a dispreferred text). The dispreferred text comes from
``harness.hallucinate.make_hallucination``, which keeps only an edit that ``harness.factcheck`` confirms
contradicts the case; an item no edit can be confirmed for is skipped, and the count is logged and kept on
the returned list (``pairs.skipped``).
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.hallucinate import make_hallucination
from harness.preferences import PreferencePair

log = logging.getLogger(__name__)


class TextPairs(list):
    """A list of pairs that also says how many items were skipped (no verified hallucination)."""

    skipped: int = 0
    skipped_ids: list[str]

    def __init__(self, pairs=(), *, skipped_ids: list[str] | None = None):
        super().__init__(pairs)
        self.skipped_ids = list(skipped_ids or [])
        self.skipped = len(self.skipped_ids)


def item_seed(seed: int, sample_id: Any) -> int:
    """The per-item seed of the hallucination (stable across runs and splits)."""
    return zlib.crc32(f"{seed}:{sample_id}".encode())


def default_text_pairs(task, samples, seed: int) -> TextPairs:
    """Ground truth over a verified hallucination for every item of ``samples`` (a task's ``datasets.Dataset``)."""
    import datasets

    images = samples.cast_column("image", datasets.Image(decode=False))["image"]
    rows = samples.remove_columns([c for c in ("image", "mask") if c in samples.column_names])
    pairs, skipped = [], []
    for index, sample in enumerate(rows):
        image = images[index]
        path = image.get("path") if isinstance(image, dict) else None
        if not path:
            raise HarnessError(f"task '{task.name}': sample {sample['id']} has no image file to train on")
        answer = str(sample["answer"]).strip()
        made = make_hallucination({**sample, "answer": answer}, seed=item_seed(seed, sample["id"]))
        if made is None:
            skipped.append(str(sample["id"]))
            continue
        pairs.append(PreferencePair(
            id=f"{task.name}-{sample['id']}", image=str(Path(path).resolve()), prompt=task.prompt(sample),
            chosen=answer, rejected=made.text, kind="text", source="rules-hallucination",
            extra={"severity": made.severity, "contradictions": [c.__dict__ for c in made.contradictions]}))
    if skipped:
        log.info("task %s: %d of %d items skipped (no verified hallucination), e.g. %s", task.name, len(skipped),
                 len(rows), ", ".join(skipped[:3]))
    return TextPairs(pairs, skipped_ids=skipped)
