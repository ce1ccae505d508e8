"""Evaluation options: one dataclass, so the CLI, configs and docs read the same defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

ABLATIONS = ("blank", "noise")


@dataclass
class EvalConfig:
    """How an evaluation runs. Every field has a default; ``__post_init__`` rejects bad values."""

    split: str = field(default="test", metadata={"help": "dataset split to evaluate"})
    limit: int | None = field(default=None, metadata={"help": "evaluate only the first N items of each task"})
    batch_size: int = field(default=16, metadata={"help": "prompts per generate call (left-padded)"})
    max_new_tokens_closed: int = field(default=8, metadata={"help": "token budget for yes/no answers"})
    max_new_tokens_open: int = field(default=32, metadata={"help": "token budget for short-phrase answers"})
    max_new_tokens_report: int = field(default=256, metadata={"help": "token budget for generated reports"})
    image_ablation: str | None = field(
        default=None,
        metadata={"help": "also evaluate with the image blanked ('blank') or diffusion-noised ('noise')"},
    )
    noise_step: int = field(default=500, metadata={"help": "diffusion step of the 'noise' ablation (0-999 of 1000, sigmoid schedule)"})
    blank_value: int = field(default=0, metadata={"help": "grey level (0-255) of the 'blank' ablation image"})
    n_boot: int = field(default=1000, metadata={"help": "bootstrap resamples for the 95% intervals"})
    seed: int = field(default=0, metadata={"help": "seed for bootstraps, image noise and sampling"})
    do_sample: bool = field(
        default=False,
        metadata={"help": "sample answers at --temperature instead of greedy decoding (seeded per batch by --seed)"},
    )
    temperature: float = field(default=1.0, metadata={"help": "softmax temperature when sampling"})

    def __post_init__(self) -> None:
        from harness.core.errors import HarnessError

        if self.batch_size < 1:
            raise HarnessError(f"batch size must be at least 1, got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            raise HarnessError(f"limit must be at least 1, got {self.limit}")
        if self.image_ablation not in (None, *ABLATIONS):
            raise HarnessError(f"image ablation must be one of {', '.join(ABLATIONS)}, got '{self.image_ablation}'")
        for kind in ("closed", "open", "report"):
            if self.max_new_tokens(kind) < 1:
                raise HarnessError(f"max_new_tokens_{kind} must be at least 1")
        if not 0 <= self.noise_step <= 999:
            raise HarnessError(f"noise step must be in [0, 999], got {self.noise_step}")
        if not 0 <= self.blank_value <= 255:
            raise HarnessError(f"blank value must be in [0, 255], got {self.blank_value}")
        if not self.temperature > 0:
            raise HarnessError(f"temperature must be > 0, got {self.temperature}")

    def max_new_tokens(self, answer_type: str) -> int:
        return getattr(self, f"max_new_tokens_{answer_type}", self.max_new_tokens_open)

    def to_dict(self) -> dict:
        return asdict(self)
