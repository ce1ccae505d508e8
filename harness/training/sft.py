"""Supervised fine-tuning on (image, prompt, response) records, through the same loop as preferences.

SFT is the shared core with a loss over chosen rows only: the registered ``sft`` method
(``harness.methods.sft.SFT``, ``pair_kinds = ("sft",)``) returns each record's negative log-likelihood
averaged over its response tokens, and the core averages those over the batch (weights are 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.curation.preferences import PreferencePair
from harness.methods.sft import SFT
from harness.training.config import TrainConfig


@dataclass
class SFTRecord:
    """One supervised example; ``image`` is a file path (absolute, or relative to ``image_root``)."""

    image: str
    prompt: str
    response: str


def records_to_pairs(records: list[SFTRecord]) -> list[PreferencePair]:
    return [PreferencePair(id=str(i), image=r.image, prompt=r.prompt, chosen=r.response, rejected="",
                           kind="sft", source="sft") for i, r in enumerate(records)]


def train_sft(model: Any, records: list[SFTRecord], output_dir: Path, config: TrainConfig | None = None,
              *, image_root: Path | None = None, resume: bool = False) -> Path:
    """Fine-tune on ``records``; returns the saved full-model folder (LoRA merged), loadable by ``load_hf_model``."""
    from harness.training.loop import train_preference

    config = config or TrainConfig()
    result = train_preference(model, SFT(), records_to_pairs(records), image_root, output_dir,
                              config, resume=resume)
    if result.model_path is None:
        return Path(output_dir) / "model"
    return result.model_path
