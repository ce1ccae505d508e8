"""The method contract: a preference-optimization method is a loss (plus, optionally, a pair builder).

The shared training core computes, for every pair in a batch, the policy's and (unless the method is
reference-free) the reference's log-probabilities of the chosen and rejected responses, and calls
``Method.loss``. Adding a method never touches the training loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch


@dataclass
class LogProbs:
    """Sequence log-probabilities of one batch, each of shape ``(batch,)``.

    ``*_logps`` are summed over response tokens; ``*_mean_logps`` are averaged over them (SimPO, ORPO);
    ``*_tokens`` are the response lengths. ``chosen_token_logps`` etc. (``(batch, length)``, zero outside
    the response) are given to methods that weight tokens (FiSAO). ``anchor_*`` holds extra rows some
    methods request (mDPO's image-conditional term: chosen text on the rejected image).
    """

    chosen_logps: torch.Tensor
    rejected_logps: torch.Tensor
    chosen_mean_logps: torch.Tensor
    rejected_mean_logps: torch.Tensor
    chosen_tokens: torch.Tensor
    rejected_tokens: torch.Tensor
    chosen_token_logps: torch.Tensor | None = None
    rejected_token_logps: torch.Tensor | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class LossOutput:
    """Per-sample losses ``(batch,)`` (the core weights and averages them) and implicit rewards."""

    losses: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


class Method:
    """Subclass, set the class attributes, implement ``loss``; register with ``METHODS.register``."""

    name: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    # which pair kinds the method trains on: "text" (same image), "visual" (noised rejected image), "sft"
    pair_kinds: ClassVar[tuple[str, ...]] = ("text",)
    reference_free: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {"beta": 0.1}
    # extra forward rows the method needs, e.g. ("chosen_on_rejected_image",) for mDPO
    extra_rows: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **hparams: Any):
        unknown = set(hparams) - set(self.defaults)
        if unknown:
            from harness.errors import HarnessError

            raise HarnessError(
                f"method '{self.name}' has no hyperparameter(s) {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(self.defaults)) or 'none'})"
            )
        self.hparams = {**self.defaults, **hparams}

    def loss(self, policy: LogProbs, reference: LogProbs | None, weights: torch.Tensor) -> LossOutput:
        raise NotImplementedError

    def build_pairs(self, context: Any) -> Any:
        """Optional: build this method's preference pairs (see ``harness.methods.PairContext``)."""
        raise NotImplementedError(f"method '{self.name}' has no pair builder; pass --pairs")

    @classmethod
    def has_pair_builder(cls) -> bool:
        return cls.build_pairs is not Method.build_pairs


@dataclass
class PairContext:
    """What a pair builder gets: the task's training samples, the base model (for sampling) and a folder.

    ``samples`` is a ``datasets.Dataset`` with the task columns (``harness.tasks.base``); ``output_dir`` is
    where the builder writes derived images (noised images) and its resumable cache.
    """

    task: Any
    samples: Any
    model: Any
    output_dir: Any
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
