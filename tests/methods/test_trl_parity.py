"""The dpo, ipo, hinge and robust losses equal TRL's DPOTrainer losses on the same log-probs.

TRL (a test-only dependency) computes its losses inside ``DPOTrainer._compute_loss(model, inputs)``, right
after the forward pass; there is no standalone loss function. We run that very method on a stand-in
trainer object holding only the attributes it reads, with a stand-in model whose output per-token
log-probs sum to the chosen/rejected log-probs we choose, and precomputed reference log-probs. Thus TRL's
own loss code (its ``loss_type`` branches, IPO's per-token averaging, robust's label-smoothing formula)
runs unmodified on our numbers, and we compare its batch loss with the mean of our per-sample losses and,
pair by pair, with each of our per-sample losses.
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from harness.methods import METHODS

trl_dpo = pytest.importorskip("trl.trainer.dpo_trainer", reason="TRL (test dependency) is not installed")

# (our method, TRL loss_type, label_smoothing)
PAIRS = [("dpo", "sigmoid", 0.0), ("ipo", "ipo", 0.0), ("hinge", "hinge", 0.0), ("robust", "robust", 0.2)]
POLICY_CHOSEN = [-10.0, -3.2, -25.0, -7.5]
POLICY_REJECTED = [-14.0, -2.9, -20.0, -9.0]
REF_CHOSEN = [-12.0, -3.0, -24.0, -8.5]
REF_REJECTED = [-13.0, -3.4, -22.5, -8.0]
CHOSEN_TOKENS = [4, 3, 9, 5]
REJECTED_TOKENS = [7, 2, 6, 5]


def trl_loss(loss_type: str, beta: float, label_smoothing: float, rows: list[int]) -> float:
    """TRL's batch loss for the pairs ``rows`` of the tables above."""
    chosen = [POLICY_CHOSEN[i] for i in rows]
    rejected = [POLICY_REJECTED[i] for i in rows]
    lengths = [CHOSEN_TOKENS[i] for i in rows] + [REJECTED_TOKENS[i] for i in rows]
    seq = max(lengths) + 1
    # completion_mask marks the completion tokens; its first column is prompt so that the shifted mask
    # (TRL's labels) covers the same count. Per-token log-probs spread each sum evenly over its tokens.
    completion_mask = torch.zeros(2 * len(rows), seq, dtype=torch.long)
    token_logps = torch.zeros(2 * len(rows), seq - 1, dtype=torch.float64)
    for r, (total, n) in enumerate(zip(chosen + rejected, lengths)):
        completion_mask[r, 1:n + 1] = 1
        token_logps[r, :n] = total / n
    outputs = SimpleNamespace(
        log_probs=token_logps,
        entropy=torch.zeros_like(token_logps),
        mean_logits=torch.zeros_like(token_logps),
        is_top1=torch.zeros_like(token_logps, dtype=torch.bool),
    )
    accelerator = SimpleNamespace(device=torch.device("cpu"), gather=lambda x: x, gather_for_metrics=lambda x: x)
    trainer = SimpleNamespace(
        model=SimpleNamespace(training=True), accelerator=accelerator, aux_loss_enabled=False, ld_alpha=None,
        precompute_ref_logps=True, f_divergence_type="reverse_kl", loss_types=[loss_type], loss_weights=[1.0],
        beta=beta, label_smoothing=label_smoothing, use_weighting=False,
        _metrics={"train": defaultdict(list)}, _total_train_tokens=0, _tp_size=1,
    )
    inputs = {
        "input_ids": torch.ones(2 * len(rows), seq, dtype=torch.long),
        "attention_mask": torch.ones(2 * len(rows), seq, dtype=torch.long),
        "completion_mask": completion_mask,
        "ref_chosen_logps": torch.tensor([REF_CHOSEN[i] for i in rows], dtype=torch.float64),
        "ref_rejected_logps": torch.tensor([REF_REJECTED[i] for i in rows], dtype=torch.float64),
    }
    loss = trl_dpo.DPOTrainer._compute_loss(trainer, lambda **kwargs: outputs, inputs, return_outputs=False)
    return float(loss)


def our_losses(name: str, beta: float, label_smoothing: float, make_logprobs) -> torch.Tensor:
    hparams = {"beta": beta} | ({"label_smoothing": label_smoothing} if name == "robust" else {})
    method = METHODS.get(name)(**hparams)
    policy = make_logprobs(POLICY_CHOSEN, POLICY_REJECTED, CHOSEN_TOKENS, REJECTED_TOKENS)
    reference = make_logprobs(REF_CHOSEN, REF_REJECTED, CHOSEN_TOKENS, REJECTED_TOKENS)
    return method.loss(policy, reference, torch.ones(len(POLICY_CHOSEN), dtype=torch.float64)).losses


@pytest.mark.parametrize("beta", [0.1, 0.5])
@pytest.mark.parametrize(("name", "loss_type", "label_smoothing"), PAIRS)
def test_loss_equals_trl_dpo_trainer(make_logprobs, name, loss_type, label_smoothing, beta):
    ours = our_losses(name, beta, label_smoothing, make_logprobs)
    batch = list(range(len(POLICY_CHOSEN)))
    assert ours.mean().item() == pytest.approx(trl_loss(loss_type, beta, label_smoothing, batch), rel=1e-12, abs=1e-12)
    for i in batch:
        assert ours[i].item() == pytest.approx(trl_loss(loss_type, beta, label_smoothing, [i]), rel=1e-12, abs=1e-12)


def test_parity_harness_detects_a_different_loss(make_logprobs):
    """The comparison can fail: DPO's values differ from TRL's hinge on the same numbers."""
    ours = our_losses("dpo", 0.1, 0.0, make_logprobs)
    assert ours.mean().item() != pytest.approx(trl_loss("hinge", 0.1, 0.0, list(range(4))), rel=1e-6)
