"""The mmedpo loss and its use by the shared training core (batches, weights, the release data)."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.dpo import DPO
from harness.methods import PairContext, get_method
from harness.methods.base import LogProbs
from harness.models.hf import load_hf_model
from mmedpo.method import MMedPO


def _logprobs(chosen, rejected):
    c, r = torch.tensor(chosen, dtype=torch.float64), torch.tensor(rejected, dtype=torch.float64)
    ones = torch.ones_like(c)
    return LogProbs(c, r, c, r, ones, ones)


def test_registered_lazily_with_both_pair_kinds():
    cls = get_method("mmedpo")
    assert cls is MMedPO and cls.pair_kinds == ("text", "visual") and cls.has_pair_builder()
    assert "2412.06141" in cls.citation


def test_hand_computed_value():
    # beta 0.1, h = (-10 - -12) - (-14 - -13) = 3 -> -log sigmoid(0.3) = log(1 + e^-0.3)
    out = MMedPO().loss(_logprobs([-10.0], [-14.0]), _logprobs([-12.0], [-13.0]), torch.ones(1))
    assert out.losses.item() == pytest.approx(math.log1p(math.exp(-0.3)), abs=1e-12)
    assert out.chosen_rewards.item() == pytest.approx(0.2) and out.rejected_rewards.item() == pytest.approx(-0.1)


def test_equals_dpo_with_unit_weights_and_returns_unweighted_losses():
    generator = torch.Generator().manual_seed(0)
    policy = _logprobs(*(-20 * torch.rand(2, 16, generator=generator, dtype=torch.float64)).tolist())
    reference = _logprobs(*(-20 * torch.rand(2, 16, generator=generator, dtype=torch.float64)).tolist())
    ours = MMedPO(beta=0.25).loss(policy, reference, torch.ones(16))
    theirs = DPO(beta=0.25).loss(policy, reference, torch.ones(16))
    torch.testing.assert_close(ours.losses, theirs.losses, rtol=0, atol=1e-12)
    # the core computes mean(w_i * loss_i): the method's losses must not depend on the weights
    weights = torch.linspace(0.75, 1.25, 16, dtype=torch.float64)
    weighted = MMedPO(beta=0.25).loss(policy, reference, weights)
    torch.testing.assert_close(weighted.losses, ours.losses, rtol=0, atol=0)
    torch.testing.assert_close((weights * weighted.losses), weights * theirs.losses, rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def curated(synth_train, tmp_path_factory):
    from mmedpo.curate import curate

    task, dataset = synth_train
    out = tmp_path_factory.mktemp("curated")
    return curate(PairContext(task=task, samples=dataset, model=None, output_dir=out, options={"max_items": 16, "text_generator": "rules"}))


def test_visual_pairs_carry_the_noised_image_on_the_rejected_side_only(curated, tiny_vlm):
    from PIL import Image

    from harness.training.batch import Collator, PairDataset
    from harness.training.encoding import RowEncoder

    pairs = [next(p for p in curated.pairs if p.kind == "visual"), next(p for p in curated.pairs if p.kind == "text")]
    encoder = RowEncoder(tiny_vlm.processor, tiny_vlm.format_prompt, 256)
    dataset = PairDataset(pairs, curated.image_root, encoder, with_rejected=True)
    batch = Collator(tiny_vlm.tokenizer.pad_token_id)([dataset[0], dataset[1]])
    chosen, rejected = batch.chosen.images["pixel_values"], batch.rejected.images["pixel_values"]

    def pixels(path):
        return tiny_vlm.processor.image_processor(Image.open(curated.image_root / path).convert("RGB"),
                                                  return_tensors="pt")["pixel_values"][0]

    visual, text = pairs
    torch.testing.assert_close(chosen[0], pixels(visual.image))
    torch.testing.assert_close(rejected[0], pixels(visual.rejected_image))
    assert not torch.equal(chosen[0], rejected[0])
    assert torch.equal(batch.chosen.input_ids[0], batch.rejected.input_ids[0])  # same text
    torch.testing.assert_close(rejected[1], chosen[1])  # a text pair keeps its image
    assert not torch.equal(batch.chosen.input_ids[1], batch.rejected.input_ids[1])
    assert batch.weights.tolist() == pytest.approx([visual.weight, text.weight])


def test_training_on_curated_pairs_applies_the_weights(curated, tiny_model_dir, tmp_path):
    from harness.training import train_preference
    from harness.training.config import TrainConfig

    pairs = curated.pairs[:4]
    config = TrainConfig(lr=1e-2, max_steps=2, batch_size=4, warmup_ratio=0.0, lora_r=4, merge_lora=False)
    result = train_preference(load_hf_model(tiny_model_dir, device="cpu", dtype="fp32"), MMedPO(), pairs, curated.image_root, tmp_path / "run", config)
    # under LoRA the policy equals the reference at step 1, so each per-sample loss is log 2
    assert result.history[0]["loss"] == pytest.approx(sum(p.weight for p in pairs) / 4 * math.log(2), rel=1e-5)
    assert math.isfinite(result.history[1]["loss"])


def test_training_on_the_imported_release_pairs(shared_data, tiny_model_dir, tmp_path):
    from harness.curation.preferences import read_pairs
    from harness.training import train_preference
    from harness.training.config import TrainConfig

    for name in ("iuxray_dpo_weighted.json", "slake_dpo_weighted.json"):  # no images here: parse only
        parsed = list(read_pairs(shared_data / "mmedpo_release" / name))
        assert parsed and all(0.0 <= p.weight <= 1.0 and p.kind == "text" for p in parsed)
    pairs = list(read_pairs(shared_data / "mmedpo_release" / "vqa-rad_dpo_weighted.json"))
    assert len(pairs) == 1797
    few = [p for p in pairs if p.weight > 0][:4]
    config = TrainConfig(lr=1e-2, max_steps=2, batch_size=2, warmup_ratio=0.0, lora_r=4, max_length=192,
                         merge_lora=False)
    result = train_preference(load_hf_model(tiny_model_dir, device="cpu", dtype="fp32"), MMedPO(), few, shared_data / "vqa_rad" / "images",
                              tmp_path / "run", config)
    assert result.history[0]["loss"] == pytest.approx(sum(p.weight for p in few[:2]) / 2 * math.log(2), rel=1e-5)
    assert all(math.isfinite(h["loss"]) for h in result.history)
