"""Every built-in loss against values derived by hand (math.log / math.exp, not torch).

One standard pair throughout (summed log-probs over the response tokens):

    policy:    chosen -10 (4 tokens)   rejected -14 (7 tokens)   chosen on the corrupted image -10
    reference: chosen -12              rejected -13              chosen on the corrupted image  -9

so the chosen log-ratio is 2, the rejected log-ratio -1, the DPO margin h = 3, the conditional (CoPO)
log-ratio -1, and the mean log-probs are -2.5 (chosen) and -2.0 (rejected).
"""

from __future__ import annotations

import math

import pytest
import torch

from harness.core.errors import HarnessError
from harness.methods import METHODS


def softplus(x: float) -> float:
    """-log sigmoid(-x) = log(1 + e^x)."""
    return math.log1p(math.exp(x))


def nls(x: float) -> float:
    """-log sigmoid(x)."""
    return softplus(-x)


def log_odds(mean_logp: float) -> float:
    return mean_logp - math.log(1 - math.exp(mean_logp))


POLICY = dict(chosen=[-10.0], rejected=[-14.0], chosen_tokens=[4], rejected_tokens=[7],
              extra={"chosen_on_rejected_image": [-10.0]})
REFERENCE = dict(chosen=[-12.0], rejected=[-13.0], chosen_tokens=[4], rejected_tokens=[7],
                 extra={"chosen_on_rejected_image": [-9.0]})

# (method, hyperparameters, expected loss, expected chosen reward, expected rejected reward)
CASES = [
    # -log sigmoid(0.1 * 3) = log(1 + e^-0.3) = 0.554355
    ("dpo", {}, nls(0.3), 0.2, -0.1),
    ("povid", {}, nls(0.3), 0.2, -0.1),
    # the self-generated-preference methods differ in their pairs, not their loss: sigmoid DPO
    ("self_rewarding", {}, nls(0.3), 0.2, -0.1),
    ("stllava_med", {}, nls(0.3), 0.2, -0.1),
    ("sima", {}, nls(0.3), 0.2, -0.1),
    # per-token ratios 2/4 and -1/7: (0.5 + 1/7 - 1/(2*0.1))^2 = (0.642857 - 5)^2 = 18.984694
    ("ipo", {}, (2 / 4 + 1 / 7 - 5.0) ** 2, 0.2, -0.1),
    # (0.9 * 0.554355 - 0.1 * 0.854355) / 0.8 = 0.516855
    ("robust", {"label_smoothing": 0.1}, (0.9 * nls(0.3) - 0.1 * nls(-0.3)) / 0.8, 0.2, -0.1),
    # 0.9 * 0.554355 + 0.1 * 0.854355 = 0.584355
    ("cdpo", {"label_smoothing": 0.1}, 0.9 * nls(0.3) + 0.1 * nls(-0.3), 0.2, -0.1),
    # max(0, 1 - 0.3) = 0.7; with beta 0.5 the margin 1.5 clears the hinge: 0
    ("hinge", {}, 0.7, 0.2, -0.1),
    ("hinge", {"beta": 0.5}, 0.0, 1.0, -0.5),
    # 0.554355 + 1.0 * 10/4 = 3.054355
    ("dpo_nll", {}, nls(0.3) + 2.5, 0.2, -0.1),
    ("dpo_nll", {"alpha": 0.5}, nls(0.3) + 1.25, 0.2, -0.1),
    # -log sigmoid(2 * (-2.5 + 2.0) - 1) = log(1 + e^2) = 2.126928; rewards 2 * mean log-probs
    ("simpo", {}, softplus(2.0), -5.0, -4.0),
    # 2.5 + 0.1 * -log sigmoid(log odds(-2.5) - log odds(-2.0)) = 2.5 + 0.1 * 1.011705 = 2.601171
    ("orpo", {}, 2.5 + 0.1 * nls(log_odds(-2.5) - log_odds(-2.0)), -0.25, -0.2),
    # chosen ratio 2 against the conditional ratio -1: -log sigmoid(0.1 * 3) = 0.554355
    ("copo", {}, nls(0.3), 0.2, -0.1),
    # DPO 0.554355 + CoPO 0.554355 + anchor -log sigmoid(0.2) = 0.598139 -> 1.706849
    ("mdpo", {}, 2 * nls(0.3) + nls(0.2), 0.2, -0.1),
    # anchor -log sigmoid(0.2 - 0.5) = 0.854355
    ("mdpo", {"delta": 0.5}, 2 * nls(0.3) + nls(-0.3), 0.2, -0.1),
    # hinge anchor max(0, 0.5 - 0.2) = 0.3
    ("mdpo", {"anchor": "hinge", "delta": 0.5}, 2 * nls(0.3) + 0.3, 0.2, -0.1),
    # mean NLL of the chosen answer: 10 / 4
    ("sft", {}, 2.5, -2.5, 0.0),
]


@pytest.mark.parametrize(("name", "hparams", "expected", "chosen_reward", "rejected_reward"), CASES)
def test_loss_matches_hand_computed_value(make_logprobs, name, hparams, expected, chosen_reward, rejected_reward):
    method = METHODS.get(name)(**hparams)
    reference = None if method.reference_free else make_logprobs(**REFERENCE)
    out = method.loss(make_logprobs(**POLICY), reference, torch.ones(1, dtype=torch.float64))
    assert out.losses.shape == (1,)
    assert out.losses.item() == pytest.approx(expected, abs=1e-9)
    assert out.chosen_rewards.item() == pytest.approx(chosen_reward, abs=1e-9)
    assert out.rejected_rewards.item() == pytest.approx(rejected_reward, abs=1e-9)


def test_docstring_example_of_ipo_with_two_and_four_tokens(make_logprobs):
    # ratios 2 over 4 tokens and -1 over 2 tokens: h_avg = 0.5 + 0.5 = 1, loss = (1 - 5)^2 = 16
    policy = make_logprobs([-10.0], [-14.0], [4], [2])
    reference = make_logprobs([-12.0], [-13.0], [4], [2])
    out = METHODS.get("ipo")().loss(policy, reference, torch.ones(1))
    assert out.losses.item() == pytest.approx(16.0)


# token-level losses need per-token log-probs, so their hand-computed cases live with them
HAND_TESTED_ELSEWHERE = {"fisao"}  # tests/methods/test_fisao_loss.py::test_loss_by_hand


def test_every_built_in_method_has_a_hand_computed_case():
    covered = {case[0] for case in CASES} | HAND_TESTED_ELSEWHERE
    built_in = {n for n in METHODS.names() if METHODS.get(n).__module__.startswith("baselines")}
    assert built_in <= covered, f"no hand-computed loss test for {sorted(built_in - covered)}"


@pytest.mark.parametrize("name", sorted({case[0] for case in CASES}))
def test_losses_are_per_sample_unweighted_and_differentiable(make_logprobs, name):
    """Two pairs give two losses; the weights do not enter (the core applies them); gradients flow."""
    method = METHODS.get(name)()
    policy = make_logprobs([-10.0, -3.0], [-14.0, -2.0], [4, 3], [7, 2],
                           extra={"chosen_on_rejected_image": [-10.0, -4.0]}, requires_grad=True)
    reference = None if method.reference_free else make_logprobs(
        [-12.0, -3.5], [-13.0, -2.5], [4, 3], [7, 2], extra={"chosen_on_rejected_image": [-9.0, -3.0]})
    ones = method.loss(policy, reference, torch.ones(2, dtype=torch.float64))
    heavy = method.loss(policy, reference, torch.tensor([3.0, 0.25], dtype=torch.float64))
    assert ones.losses.shape == (2,)
    assert torch.equal(ones.losses, heavy.losses)
    assert not ones.chosen_rewards.requires_grad and not ones.rejected_rewards.requires_grad
    ones.losses.sum().backward()
    assert policy.chosen_logps.grad is not None and torch.all(torch.isfinite(policy.chosen_logps.grad))


def test_sft_reads_only_the_chosen_fields(make_logprobs):
    policy = make_logprobs([-10.0, -6.0], [], [4, 2], [])
    out = METHODS.get("sft")().loss(policy, None, torch.ones(2))
    assert out.losses.tolist() == pytest.approx([2.5, 3.0])
    assert out.rejected_rewards.shape == (2,)


def test_orpo_log_odds_stays_finite_near_probability_one(make_logprobs):
    policy = make_logprobs([-1e-9], [-5.0], [1], [1])
    out = METHODS.get("orpo")().loss(policy, None, torch.ones(1))
    assert torch.isfinite(out.losses).all()


def test_conditional_methods_need_the_extra_row(make_logprobs):
    plain = dict(POLICY, extra=None)
    for name in ("copo", "mdpo"):
        with pytest.raises(HarnessError, match="chosen_on_rejected_image"):
            METHODS.get(name)().loss(make_logprobs(**plain), make_logprobs(**dict(REFERENCE, extra=None)), torch.ones(1))


def test_reference_based_methods_reject_a_missing_reference(make_logprobs):
    with pytest.raises(HarnessError, match="reference"):
        METHODS.get("dpo")().loss(make_logprobs(**POLICY), None, torch.ones(1))


@pytest.mark.parametrize(("name", "hparams", "message"), [
    ("dpo", {"gamma": 1.0}, "no hyperparameter"),
    ("robust", {"label_smoothing": 0.5}, r"\[0, 0.5\)"),
    ("mdpo", {"anchor": "relu"}, "anchor"),
    ("dpo", {"beta": "abc"}, "expects float"),
])
def test_bad_hyperparameters_are_one_line_errors(name, hparams, message):
    with pytest.raises(HarnessError, match=message):
        METHODS.get(name)(**hparams)


def test_cli_strings_are_converted_to_the_default_type():
    assert METHODS.get("cdpo")(beta="0.25", label_smoothing="0.2").hparams == {"beta": 0.25, "label_smoothing": 0.2}


def test_copo_corrupted_image_is_a_small_deterministic_crop():
    from PIL import Image

    image = Image.new("RGB", (200, 100))
    method = METHODS.get("copo")()
    first, again = method.corrupt_image(image, seed=3), method.corrupt_image(image, seed=3)
    assert first.size == again.size
    area = first.size[0] * first.size[1] / (200 * 100)
    assert 0 < area <= 0.2 + 0.02  # rounding of the crop sides
    assert {method.corrupt_image(image, seed=s).size for s in range(5)} != {first.size}
