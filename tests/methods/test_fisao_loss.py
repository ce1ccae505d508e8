"""FiSAO: the token-weighted DPO loss by hand, its reduction to DPO, token weights, and the batch hook."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.dpo import DPO
from baselines.fisao import FiSAO, token_weights
from harness.core.errors import HarnessError
from harness.curation.preferences import PreferencePair
from harness.methods.base import LogProbs


def token_logprobs(chosen, rejected, chosen_weights=None, rejected_weights=None) -> LogProbs:
    """LogProbs from per-token log-probs (rows padded with zeros, as the core leaves non-response slots)."""
    c, r = torch.tensor(chosen, dtype=torch.float64), torch.tensor(rejected, dtype=torch.float64)
    ct, rt = (c != 0).sum(1).double(), (r != 0).sum(1).double()

    def weights(given):
        return None if given is None else torch.tensor(given, dtype=torch.float64)

    return LogProbs(c.sum(1), r.sum(1), c.sum(1) / ct, r.sum(1) / rt, ct, rt, c, r,
                    chosen_token_weights=weights(chosen_weights), rejected_token_weights=weights(rejected_weights))


def test_loss_by_hand():
    # chosen ratios (0.5, -1) weighted (2, 0.5) -> 0.5; rejected ratios (-1, 1) weighted (1.5, 0.5) -> -1
    policy = token_logprobs([[-1.0, -2.0]], [[-3.0, -1.0]], chosen_weights=[[2.0, 0.5]], rejected_weights=[[1.5, 0.5]])
    reference = token_logprobs([[-1.5, -1.0]], [[-2.0, -2.0]])
    out = FiSAO().loss(policy, reference, torch.ones(1))
    assert out.losses.item() == pytest.approx(math.log1p(math.exp(-0.15)), abs=1e-9)  # h = 1.5, beta = 0.1
    assert out.chosen_rewards.item() == pytest.approx(0.05) and out.rejected_rewards.item() == pytest.approx(-0.1)


def test_unit_weights_equal_dpo():
    policy = token_logprobs([[-1.0, -2.0, -0.5], [-0.7, -0.2, 0.0]], [[-3.0, -1.0, 0.0], [-2.0, -0.1, -0.3]])
    reference = token_logprobs([[-1.5, -1.0, -0.4], [-0.9, -0.3, 0.0]], [[-2.0, -2.0, 0.0], [-1.0, -0.5, -0.2]])
    weights = torch.ones(2)
    torch.testing.assert_close(FiSAO().loss(policy, reference, weights).losses,
                               DPO().loss(policy, reference, weights).losses)


def test_down_weighting_a_rejected_token_changes_the_loss_as_expected():
    policy = token_logprobs([[-1.0]], [[-3.0, -1.0]], rejected_weights=[[1.0, 0.0]])
    reference = token_logprobs([[-1.0]], [[-2.0, -2.0]])
    # only the first rejected token counts: h = 0 - (-1) = 1
    assert FiSAO().loss(policy, reference, torch.ones(1)).losses.item() == pytest.approx(math.log1p(math.exp(-0.1)))


def test_needs_token_level_reference():
    policy = token_logprobs([[-1.0]], [[-2.0]])
    cached = LogProbs(*(torch.zeros(1) for _ in range(6)))  # the reference cache: sums only
    with pytest.raises(HarnessError, match="ref-cache"):
        FiSAO().loss(policy, cached, torch.ones(1))


def test_token_weights_standardize_and_clip():
    assert token_weights([1.0, 3.0], 2.0, 1.0, alpha=0.5, low=0.0, high=2.0, sign=1.0) == [0.5, 1.5]
    assert token_weights([1.0, 3.0], 2.0, 1.0, alpha=0.5, low=0.0, high=2.0, sign=-1.0) == [1.5, 0.5]
    assert token_weights([10.0, -10.0], 0.0, 1.0, alpha=0.5, low=0.0, high=2.0, sign=1.0) == [2.0, 0.0]


@pytest.fixture(scope="module")
def tiny_vlm(tiny_model_dir):
    from harness.models.hf import load_hf_model

    return load_hf_model(tiny_model_dir, device="cpu", dtype="fp32")


@pytest.mark.parametrize("max_length", [200, None])
def test_batch_carries_token_weights_into_the_logps_window(tiny_vlm, one_step_images, max_length):
    """The weights FiSAO's contract hook gives land on the response tokens (cut with the response), 1
    elsewhere, aligned with token_logps; a method without the hook gets none from the same pairs."""
    from harness.training.batch import Collator, PairDataset
    from harness.training.encoding import RowEncoder
    from harness.training.logps import concatenated_forward, to_logprobs

    prompt = "is there a lesion?\nAnswer yes or no."
    probe = RowEncoder(tiny_vlm.processor, tiny_vlm.format_prompt, 10_000)
    from PIL import Image

    with Image.open(one_step_images / "scan.png") as image:
        full = probe.encode(image.convert("RGB"), prompt, "yes there is a small mass")
    n = full.length - full.prompt_len
    given = [0.25 * (i + 1) for i in range(n)]
    max_length = max_length or full.prompt_len + 3  # None: cut the response to 3 tokens
    pairs = [PreferencePair("w", "scan.png", prompt, "yes there is a small mass", "no",
                            extra={"chosen_token_weights": given}),
             PreferencePair("u", "scan.png", prompt, "no", "yes")]
    encoder = RowEncoder(tiny_vlm.processor, tiny_vlm.format_prompt, max_length)
    plain = PairDataset(pairs, one_step_images, encoder, with_rejected=True, token_weights=DPO().token_weights)
    assert Collator(tiny_vlm.tokenizer.pad_token_id)([plain[0], plain[1]]).chosen.token_weights is None
    dataset = PairDataset(pairs, one_step_images, encoder, with_rejected=True, token_weights=FiSAO().token_weights)
    batch = Collator(tiny_vlm.tokenizer.pad_token_id)([dataset[0], dataset[1]])
    weights = batch.chosen.token_weights
    assert batch.rejected.token_weights is None  # no pair gave rejected weights
    kept = min(n, max_length - full.prompt_len)
    response = batch.chosen.response_mask[0]
    assert weights[0][response].tolist() == pytest.approx(given[:kept])
    assert bool((weights[0][~response] == 1).all()) and bool((weights[1] == 1).all())
    with torch.no_grad():
        logps = to_logprobs(concatenated_forward(tiny_vlm.model, batch))
    assert logps.rejected_token_weights is None
    window = logps.chosen_token_weights
    assert window.shape == logps.chosen_token_logps.shape
    nonzero = logps.chosen_token_logps[0] != 0
    assert window[0][nonzero].tolist() == pytest.approx(given[:kept])
