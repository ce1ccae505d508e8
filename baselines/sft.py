"""Supervised fine-tuning: the chosen (ground-truth) response's negative log-likelihood.

The paper's protocol trains every preference method from an SFT model; ``harness sft`` runs this method on
pairs of kind ``"sft"`` (prompt, image and answer only).
"""

from __future__ import annotations

from harness.training.sft import SupervisedNLL


class SFT(SupervisedNLL):
    """Per-sample mean token negative log-likelihood of the chosen response.

        loss_i = -(1 / |y_i|) * sum_t log pi(y_i,t | x_i, y_i,<t)

    Each sample's loss is averaged over its own tokens (so each sample counts once, and the core's
    ``mean(w_i * loss_i)`` can weight samples). Only the chosen fields of ``policy`` are read: sft batches
    carry no rejected rows. Rewards: the chosen mean log-prob (for logging); rejected rewards are zero.
    Worked example: a 4-token answer with summed log-prob -10 has loss 2.5.

    The loss is the training core's own ``SupervisedNLL`` (what ``harness sft`` and the tiny model's
    training use); this registered method adds the citation.
    """

    name = "sft"
    citation = (
        "Ouyang et al. Training language models to follow instructions with human feedback. NeurIPS 2022. "
        "arXiv:2203.02155 (supervised fine-tuning stage)"
    )
