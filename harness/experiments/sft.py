"""Supervised fine-tuning runs: records of (image, prompt, response) trained with the ``sft`` method through
the shared training core (``harness sft`` and the built-in models' recipes use it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.curation.preferences import PreferencePair
from harness.methods.sft import SFT


@dataclass
class SFTRecord:
    """One supervised example; ``image`` is a file path (absolute, or relative to ``image_root``)."""

    image: str
    prompt: str
    response: str


def records_to_pairs(records: list[SFTRecord]) -> list[PreferencePair]:
    return [PreferencePair(id=str(i), image=r.image, prompt=r.prompt, chosen=r.response, rejected="",
                           kind="sft", source="sft") for i, r in enumerate(records)]


def train_sft(model: Any, records: list[SFTRecord], output_dir: Path, config: Any = None,
              *, image_root: Path | None = None, resume: bool = False) -> Path:
    """Fine-tune on ``records`` through the shared core (``config``: a ``harness.training.TrainConfig``);
    returns the saved full-model folder (LoRA merged), loadable by ``load_hf_model``."""
    from harness.training.loop import train_preference

    result = train_preference(model, SFT(), records_to_pairs(records), image_root, output_dir, config,
                              resume=resume)
    if result.model_path is None:
        return Path(output_dir) / "model"
    return result.model_path
