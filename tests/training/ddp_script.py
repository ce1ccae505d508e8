"""Subprocess entry for the distributed test: train LocalDPO; argv: model images out batch_size."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from helpers import LocalDPO, make_pairs  # noqa: E402

from harness.training import TrainConfig, train_preference  # noqa: E402

CONFIG = TrainConfig(lr=5e-3, max_steps=3, batch_size=2, lora_r=4, lora_dropout=0.0, warmup_ratio=0.0,
                     merge_lora=False, max_length=256)


def pairs():
    """Text pairs (packed) and visual pairs (stacked) mixed, so each process runs both layouts."""
    visual = [dataclasses.replace(p, id=f"v{i}") for i, p in enumerate(make_pairs(4, visual=True))]
    return make_pairs(8) + visual


if __name__ == "__main__":
    model, images, out, batch_size = sys.argv[1:5]
    config = dataclasses.replace(CONFIG, batch_size=int(batch_size))
    train_preference(model, LocalDPO(), pairs(), Path(images), Path(out), config)
