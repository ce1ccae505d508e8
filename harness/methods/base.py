"""The method contract: a preference-optimization method is a loss (plus, optionally, a pair builder).

The shared training core computes, for every pair in a batch, the policy's and (unless the method is
reference-free) the reference's log-probabilities of the chosen and rejected responses, and calls
``Method.loss``. Adding a method never touches the training loop.

A method declares every option it takes: its loss hyperparameters (``defaults`` with ``hparam_help`` and
``hparam_ranges``) and, when it builds its own pairs, its pair builder's options (``builder_options``, a
dataclass of ``harness.core.options.option_field`` fields). ``harness methods`` shows both, and every command
validates user keys and values against them before any model loads (a mistyped key is a one-line error with
a suggestion; a value outside its range, or a float that is NaN or infinite, is a one-line error too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from harness.core.options import (
    Range,
    check_known,
    check_number,
    coerce,
    default_range,
    options_help,
    parse_options,
    range_text,
)

if TYPE_CHECKING:
    import torch


@dataclass
class LogProbs:
    """Sequence log-probabilities of one batch, each of shape ``(batch,)``.

    ``*_logps`` are summed over response tokens; ``*_mean_logps`` are averaged over them (SimPO, ORPO);
    ``*_tokens`` are the response lengths. ``chosen_token_logps`` etc. (``(batch, length)``, zero outside
    the response) are given to methods that weight tokens (FiSAO). ``extra`` holds the summed log-probs of
    the extra rows a method requests through ``Method.extra_rows``, keyed by row name, each ``(batch,)``:

    - ``"chosen_on_rejected_image"``: the chosen response scored with the pair's rejected image (CoPO and
      mDPO's image-conditional term). A pair with no distinct rejected image (a text pair) uses
      ``Method.corrupt_image(chosen image, seed=...)`` instead.

    A method with ``paired = False`` (an SFT-style objective) gets batches without rejected rows: its
    ``rejected_*`` fields are zeros of the batch's shape, and it reads the chosen fields only.

    ``chosen_token_weights`` / ``rejected_token_weights`` (the shape of ``chosen_token_logps``, 1 outside the
    response) are the per-token weights a method supplies through ``Method.token_weights``; None when no
    pair of the batch has any for that side.
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
    chosen_token_weights: torch.Tensor | None = None
    rejected_token_weights: torch.Tensor | None = None


@dataclass
class LossOutput:
    """Per-sample losses ``(batch,)`` and implicit rewards ``(batch,)`` (detached).

    The core applies the pair weights itself, as ``mean(w_i * loss_i)``, so a method returns unweighted
    per-sample losses (a method that wants the weights inside a non-linearity may use the ``weights``
    argument of ``Method.loss``, and then says so in its docstring). ``metrics`` holds extra batch means
    to log (scalars).
    """

    losses: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


class Method:
    """Subclass, set the class attributes, implement ``loss``; register the class under the
    ``harness.methods`` entry-point group of your package (docs/plugins.md), as the built-ins do.

    ``citation`` is the full reference with the arXiv id; ``hparam_help`` explains each key of ``defaults``
    (shown by ``harness methods``; a key without help fails the method tests). ``hparam_ranges`` gives the
    values a number hyperparameter may take (``harness.core.options.Range``); one without a declared range must
    still be finite if it is a float. A subclass that adds hyperparameters extends its parent's ranges:
    ``hparam_ranges = {**DPO.hparam_ranges, "alpha": Range(ge=0)}``. Hyperparameters given as strings (from
    the CLI) are converted to the type of their default, then checked, in ``__init__`` (which ``harness
    run``, ``train`` and ``study`` call before any model loads).
    """

    name: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    hparam_help: ClassVar[dict[str, str]] = {}
    # beta scales a log-ratio or a reward in every method that has one: positive and finite
    hparam_ranges: ClassVar[dict[str, Range]] = {"beta": Range(gt=0)}
    # which pair kinds the method trains on: "text" (same image), "visual" (noised rejected image), "sft"
    # (chosen only); the core asks ``trains_on``, which reads this
    pair_kinds: ClassVar[tuple[str, ...]] = ("text",)
    # whether the loss compares a chosen with a rejected response. False: an SFT-style objective on the
    # chosen response alone; the core then builds no rejected rows (``LogProbs``' rejected fields are zeros)
    paired: ClassVar[bool] = True
    reference_free: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {"beta": 0.1}
    # extra forward rows the method needs, e.g. ("chosen_on_rejected_image",) for mDPO
    extra_rows: ClassVar[tuple[str, ...]] = ()
    # the pair builder samples or inspects the base model itself (self-generated preferences)
    needs_model: ClassVar[bool] = False
    # the pair builder's options: a dataclass whose fields are made with harness.core.options.option_field
    # (name, type, default, help); None when the builder takes none. ``harness methods`` shows them and
    # ``run``, ``curate`` and ``train`` validate ``--option`` keys against them and against ``defaults``.
    builder_options: ClassVar[type | None] = None

    def __init__(self, **hparams: Any):
        owner = f"method '{self.name}'"
        check_known(owner, hparams, self.defaults, what="hyperparameter")
        self.hparams = {**self.defaults,
                        **{k: coerce(owner, k, v, self.defaults[k]) for k, v in hparams.items()}}
        for key, value in self.hparams.items():
            bounds = self.hparam_range(key)
            if bounds is not None:
                check_number(owner, key, value, bounds, what="hyperparameter", given=hparams.get(key))

    @classmethod
    def hparam_range(cls, key: str) -> Range | None:
        """The declared range of hyperparameter ``key``, or for a float the default one (finite)."""
        return cls.hparam_ranges.get(key) or default_range(cls.defaults.get(key))

    def loss(self, policy: LogProbs, reference: LogProbs | None, weights: torch.Tensor) -> LossOutput:
        raise NotImplementedError

    def trains_on(self, pair: Any) -> bool:
        """Whether the training core trains on ``pair`` (the others are skipped with a warning): by default,
        a pair whose ``kind`` is one of ``pair_kinds``."""
        return pair.kind in self.pair_kinds

    def token_weights(self, pair: Any) -> dict[str, Sequence[float]] | None:
        """Optional per-token weights of ``pair``'s responses, for a loss that weighs tokens.

        ``{"chosen": [...], "rejected": [...]}`` (either side may be left out), one float per response token
        in the training core's encoding order (``harness.training.encoding``; end-of-turn tokens included);
        a response cut by ``max_length`` keeps the weights of its kept tokens. The core carries them into
        ``LogProbs.chosen_token_weights`` / ``rejected_token_weights``; a side without weights weighs every
        token 1. Default: None (no per-token weights).
        """
        return None

    def build_pairs(self, context: Any) -> Any:
        """Optional: build this method's preference pairs (see ``harness.methods.PairContext``)."""
        raise NotImplementedError(f"method '{self.name}' has no pair builder; pass --pairs")

    def corrupt_image(self, image: Any, *, seed: int) -> Any:
        """The image for the ``"chosen_on_rejected_image"`` row of a pair that has no rejected image.

        Only methods that request that row need it (CoPO / mDPO crop the image).
        """
        from harness.core.errors import HarnessError

        raise HarnessError(f"method '{self.name}' needs pairs with a rejected image (visual pairs)")

    @classmethod
    def parse_builder_options(cls, options: dict[str, Any] | None) -> Any:
        """The builder's options dataclass built from ``options`` (CLI strings coerced); unknown keys are
        one-line errors with a suggestion. A method without declared builder options accepts none."""
        owner = f"method '{cls.name}'"
        if cls.builder_options is None:
            check_known(owner, dict(options or {}), [], what="pair-builder option")
            return None
        return parse_options(owner, cls.builder_options, options)

    @classmethod
    def builder_options_help(cls) -> list[dict[str, Any]]:
        """``[{name, default, help, choices}]`` of the builder's options (``harness methods``,
        ``harness curate --list-options``). Override only to add keys that are not dataclass fields."""
        return options_help(cls.builder_options) if cls.builder_options is not None else []

    @classmethod
    def hparams_help(cls) -> list[dict[str, Any]]:
        """``[{name, default, help, range}]`` of the loss hyperparameters (``defaults``, ``hparam_help``,
        ``hparam_ranges``); ``range`` is ``"> 0"``, ``"[0, 0.5)"``, ``"finite"`` for an undeclared float, or
        None for a value that is not a number."""
        return [{"name": k, "default": v, "help": cls.hparam_help.get(k, ""),
                 "range": range_text(cls.hparam_range(k))} for k, v in cls.defaults.items()]

    @classmethod
    def builder_needs_model(cls, options: dict[str, Any] | None = None) -> bool:
        """Whether the pair builder, with these options, samples or inspects the target model (so the
        pipeline loads it before building pairs). Override when it depends on the options."""
        return cls.needs_model

    @classmethod
    def has_pair_builder(cls) -> bool:
        return cls.build_pairs is not Method.build_pairs

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """What ``harness methods`` lists; reads class attributes only (no torch)."""
        return {
            "name": cls.name,
            "citation": cls.citation,
            "pair_kinds": list(cls.pair_kinds),
            "reference_free": cls.reference_free,
            "defaults": dict(cls.defaults),
            "hparams": cls.hparams_help(),
            "extra_rows": list(cls.extra_rows),
            "pair_builder": cls.has_pair_builder(),
            "builder_options": cls.builder_options_help(),
            "needs_model": cls.needs_model,
        }


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
