"""``TrainConfig``: every training option in one dataclass; the CLI flags and docs come from its fields.

Each field carries ``metadata={"help": ...}``; ``__post_init__`` rejects bad values with a one-line
``HarnessError`` so a typo fails before a model is loaded.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from harness.core.errors import HarnessError
from harness.core.options import option_field
from harness.training.trackers import REPORTERS, check_tracker

SCHEDULES = ("cosine", "linear", "constant")
PRECISIONS = ("fp32", "bf16")


@dataclass
class TrainConfig:
    """Options of the shared training core (every method, supervised and preference alike)."""

    lr: float = option_field(5e-6, "peak learning rate of the trained weights (LoRA adapters or the full model)")
    epochs: float = option_field(1.0, "passes over the pairs; ignored when max_steps > 0")
    max_steps: int = option_field(0, "optimizer steps to run; 0 derives them from epochs")
    batch_size: int = option_field(4, "pairs per device per micro-batch")
    grad_accum: int = option_field(1, "micro-batches accumulated per optimizer step")
    schedule: str = option_field("cosine", "learning-rate schedule after warm-up", choices=SCHEDULES)
    warmup_ratio: float = option_field(0.1, "fraction of the optimizer steps spent warming up linearly from 0")
    weight_decay: float = option_field(0.0, "AdamW weight decay")
    max_grad_norm: float = option_field(1.0, "gradient-norm clipping; 0 disables it")
    seed: int = option_field(0, "seed of the data order, LoRA initialisation and dropout")
    precision: str = option_field("fp32", "weights and compute: fp32, or bf16 (weights in bf16, autocast)", choices=PRECISIONS)
    lora: bool = option_field(True, "train LoRA adapters (peft) instead of all weights")
    lora_r: int = option_field(16, "LoRA rank")
    lora_alpha: int = option_field(32, "LoRA alpha (scale = alpha / r)")
    lora_dropout: float = option_field(0.05, "dropout on the LoRA input")
    lora_target: str | None = option_field(
        None, "regex over module names to adapt; default: the family's language-model linear layers"
    )
    train_projector: bool = option_field(False, "also train the vision-language projector (fully, with projector_lr)")
    projector_lr: float | None = option_field(None, "learning rate of the projector; default: lr")
    gradient_checkpointing: bool = option_field(False, "recompute activations in backward to save memory")
    share_prefix: bool = option_field(
        True, "run a pair's shared image + prompt prefix once (packed rows, 4-D mask) where the family allows it"
    )
    max_length: int = option_field(1024, "tokens per row (prompt incl. image tokens + response); responses are cut")
    save_every: int = option_field(0, "checkpoint every N optimizer steps; 0 only at the end")
    save_total_limit: int = option_field(2, "checkpoints kept (the oldest are deleted)")
    log_every: int = option_field(
        0, "a step line every N optimizer steps (and the first and last); 0: at most about 50 lines per run"
    )
    report_to: str = option_field(
        "none", "experiment tracker through accelerate (its package must be installed: docs/training.md)",
        choices=REPORTERS,
    )
    run_name: str = option_field("harness-train", "tracker run / project name")
    num_workers: int = option_field(0, "data-loader worker processes")
    ref_cache: str | None = option_field(
        None, "folder of a reference log-prob cache: computed once (keyed by pairs and model) and reused"
    )
    merge_lora: bool = option_field(True, "save the LoRA-merged full model besides the adapter")

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):  # nan passes no comparison below and inf passes most: refuse both
            value = getattr(self, spec.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise HarnessError(f"invalid training option: {spec.name} must be a finite number, got {value}")
        checks = [
            (self.lr > 0, "lr must be > 0"),
            (self.epochs > 0 or self.max_steps > 0, "epochs or max_steps must be > 0"),
            (self.max_steps >= 0, "max_steps must be >= 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.grad_accum >= 1, "grad_accum must be >= 1"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (self.lora_r >= 1, "lora_r must be >= 1"),
            (0 <= self.lora_dropout < 1, "lora_dropout must be in [0, 1)"),
            (self.projector_lr is None or self.projector_lr > 0, "projector_lr must be > 0"),
            (self.max_length >= 8, "max_length must be >= 8"),
            (self.save_every >= 0, "save_every must be >= 0"),
            (self.save_total_limit >= 1, "save_total_limit must be >= 1"),
            (self.log_every >= 0, "log_every must be >= 0"),
            (self.report_to in REPORTERS, f"report_to must be one of {', '.join(REPORTERS)}"),
            (self.num_workers >= 0, "num_workers must be >= 0"),
            (self.max_grad_norm >= 0, "max_grad_norm must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise HarnessError(f"invalid training option: {message}")
        check_tracker(self.report_to)  # before a model loads, not after training tracked nothing
        if self.lora_target is not None:
            import re

            try:
                re.compile(self.lora_target)
            except re.error as exc:
                raise HarnessError(f"invalid training option: lora_target is not a regex ({exc})") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise HarnessError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return cls(**values)
