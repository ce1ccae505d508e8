"""What the exported lm-eval task folders call at run time (their ``utils.py`` re-exports this module).

- ``load_dataset`` (``custom_dataset``): the harness loader of the task, reading the user's data folder
  (``data_dir`` in the task's metadata, else ``HARNESS_DATA``), filtered to one answer type;
- ``doc_to_image`` / ``doc_to_text``: the image, and the harness's exact prompt (``Task.prompt``) either
  with the ``<image>`` placeholder for ``--apply_chat_template`` or already formatted with a model's chat
  template (``prompt_format.json`` beside the YAML, written by ``harness export lm-eval --prompt-format-from``);
- ``process_results`` and ``aggregate_<metric>``: the harness's own metric code on (prediction, reference)
  pairs, so lm-eval reports the same numbers ``harness eval`` does.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PLACEHOLDER = "<image>"  # lm-eval's DEFAULT_IMAGE_PLACEHOLDER
PROMPT_FORMAT_FILE = "prompt_format.json"


def load_dataset(task: str, answer_type: str | None = None, split: str = "test", data_dir: str | None = None,
                 **_: Any):
    """A ``DatasetDict`` holding one split of a harness task (optionally one answer type only)."""
    import datasets

    from harness.tasks import get_task

    dataset = get_task(task).load(split, data_dir=data_dir or None)
    if answer_type:
        keep = [i for i, kind in enumerate(dataset["answer_type"]) if kind == answer_type]
        dataset = dataset.select(keep)
    return datasets.DatasetDict({split: dataset})


def doc_to_image(doc: dict) -> list:
    from harness.core.images import to_rgb

    return [to_rgb(doc["image"])]


def harness_prompt(doc: dict, task: str) -> str:
    from harness.tasks import get_task

    return get_task(task).prompt(doc)


def format_prompt(prompt: str, folder: Path) -> str:
    """``<image>`` + prompt, or the prompt inside the chat format exported for a model."""
    path = folder / PROMPT_FORMAT_FILE
    if path.is_file():
        fmt = json.loads(path.read_text(encoding="utf-8"))
        return fmt["prefix"] + prompt + fmt["suffix"]
    return PLACEHOLDER + prompt


def process_results_for(metrics: list[str]):
    def process_results(doc: dict, results: list[str]) -> dict[str, tuple[str, str, str]]:
        # every metric gets (id, prediction, reference): the aggregate recomputes the harness metric
        prediction = results[0].strip()  # harness eval strips the decoded text the same way
        return {name: (str(doc["id"]), prediction, str(doc["answer"])) for name in metrics}

    return process_results


def aggregate(metric: str, items: list[tuple[str, str, str]]) -> float:
    from harness.metrics import get_metric

    predictions = [p for _, p, _ in items]
    references = [r for _, _, r in items]
    return float(get_metric(metric)(predictions, references, n_boot=0).value)
