"""The shared preference-optimization core: one loop, methods as losses.

``train_preference`` trains any ``Method`` on preference pairs; what a method needs from the loop (a
rejected side or not, extra rows, per-token weights) it declares through the method contract
(``harness.methods.base``). Importing this package does not import torch.
"""

from __future__ import annotations

from typing import Any

from harness.training.config import TrainConfig

__all__ = ["TrainConfig", "TrainResult", "train_preference"]


def __getattr__(name: str) -> Any:
    if name in ("train_preference", "TrainResult"):
        from harness.training import loop

        return getattr(loop, name)
    raise AttributeError(name)
