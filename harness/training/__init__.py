"""The shared preference-optimization core: one loop, methods as losses.

``train_preference`` trains any ``Method`` on preference pairs; ``train_sft`` runs the same loop with a
supervised loss. Importing this package does not import torch.
"""

from __future__ import annotations

from typing import Any

from harness.training.config import TrainConfig

__all__ = ["SFTRecord", "TrainConfig", "TrainResult", "train_preference", "train_sft"]


def __getattr__(name: str) -> Any:
    if name in ("train_preference", "TrainResult"):
        from harness.training import loop

        return getattr(loop, name)
    if name in ("train_sft", "SFTRecord"):
        from harness.training import sft

        return getattr(sft, name)
    raise AttributeError(name)
