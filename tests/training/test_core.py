"""The core: encoding, batching with per-side images, the concatenated forward, the loss reduction."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import LocalDPO, LocalSimPO, make_pairs

from harness.core.errors import HarnessError
from harness.models.hf import load_hf_model
from harness.training import TrainConfig, train_preference
from harness.training.batch import Collator, PairDataset
from harness.training.encoding import RowEncoder
from harness.training.logps import concatenated_forward


@pytest.fixture(scope="module")
def vlm(tiny_model):
    return load_hf_model(tiny_model, device="cpu", dtype="fp32")


def _dataset(vlm, image_dir, pairs, max_length=256, extra=()):
    encoder = RowEncoder(vlm.processor, vlm.format_prompt, max_length)
    return PairDataset(pairs, image_dir, encoder, with_rejected=True, extra_rows=extra)


def test_config_rejects_bad_values_in_one_line():
    with pytest.raises(HarnessError, match="schedule must be one of"):
        TrainConfig(schedule="step")
    with pytest.raises(HarnessError, match="batch_size"):
        TrainConfig(batch_size=0)


def test_response_mask_covers_exactly_the_response_and_eos(vlm, image_dir):
    item = _dataset(vlm, image_dir, make_pairs(1))[0]
    row = item["chosen"]
    response = vlm.tokenizer.decode(row.input_ids[row.prompt_len:])
    assert response.strip().startswith("yes there is a mass")
    assert int(row.input_ids[-1]) == vlm.tokenizer.eos_token_id
    prompt = vlm.processor(text=[vlm.format_prompt("is there a lesion in the left lung?")],
                           images=[__import__("PIL").Image.open(image_dir / "img0.png")], return_tensors="pt")
    assert torch.equal(row.input_ids[:row.prompt_len], prompt["input_ids"][0])


def test_truncation_keeps_the_prompt_and_cuts_the_response(vlm, image_dir):
    full = _dataset(vlm, image_dir, make_pairs(1))[0]["chosen"]
    cut = _dataset(vlm, image_dir, make_pairs(1), max_length=full.prompt_len + 2)[0]["chosen"]
    assert cut.prompt_len == full.prompt_len and cut.length == full.prompt_len + 2
    with pytest.raises(HarnessError, match="pair p0: the prompt is"):
        _dataset(vlm, image_dir, make_pairs(1), max_length=full.prompt_len)[0]


def test_visual_pairs_keep_each_sides_own_pixels(vlm, image_dir):
    dataset = _dataset(vlm, image_dir, make_pairs(2, visual=True))
    batch = Collator(vlm.tokenizer.pad_token_id)([dataset[0], dataset[1]])
    assert batch.chosen.images["pixel_values"].shape == batch.rejected.images["pixel_values"].shape
    assert not torch.equal(batch.chosen.images["pixel_values"], batch.rejected.images["pixel_values"])
    assert batch.chosen.input_ids.shape == batch.rejected.input_ids.shape  # one common length
    assert batch.weights.tolist() == pytest.approx([0.5, 0.6])


def test_concatenated_forward_equals_separate_forwards(vlm, image_dir):
    dataset = _dataset(vlm, image_dir, make_pairs(3, visual=False), extra=("chosen_on_rejected_image",))
    batch = Collator(vlm.tokenizer.pad_token_id)([dataset[i] for i in range(3)])
    with torch.no_grad():
        joint = concatenated_forward(vlm.model, batch)
        for name, rows in batch.groups():
            alone = type(batch)(batch.ids, batch.weights, rows)
            separate = concatenated_forward(vlm.model, alone)["chosen"]
            torch.testing.assert_close(joint[name]["sum"], separate["sum"], rtol=1e-4, atol=1e-4)
    manual = []  # against a plain full-logits computation of one row
    rows = batch.chosen
    with torch.no_grad():
        logits = vlm.model(input_ids=rows.input_ids[:1], attention_mask=rows.attention_mask[:1],
                           pixel_values=rows.images["pixel_values"][:1]).logits[0]
    logps = logits.log_softmax(-1)
    for t in range(1, rows.input_ids.shape[1]):
        if rows.response_mask[0, t]:
            manual.append(float(logps[t - 1, rows.input_ids[0, t]]))
    assert joint["chosen"]["sum"][0].item() == pytest.approx(sum(manual), abs=1e-4)
    assert int(joint["chosen"]["tokens"][0]) == len(manual)


def test_first_step_loss_is_weighted_mean_of_log2(tiny_model, image_dir, tmp_path):
    """Under LoRA (B = 0) the policy equals the reference at step 1: every DPO loss is log 2, so the
    batch loss is mean_i(w_i) * log 2 -- which checks both the adapter-disabled reference and the reduction."""
    pairs = make_pairs(4)
    config = TrainConfig(lr=1e-2, max_steps=2, batch_size=4, warmup_ratio=0.0, lora_r=4)
    result = train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), LocalDPO(), pairs, image_dir, tmp_path / "run", config)
    weights = [p.weight for p in pairs]
    assert result.history[0]["loss"] == pytest.approx(sum(weights) / 4 * math.log(2), rel=1e-5)
    assert math.isfinite(result.history[1]["loss"]) and result.history[1]["loss"] != result.history[0]["loss"]
    assert (result.adapter_path / "adapter_config.json").is_file()
    reloaded = load_hf_model(result.model_path, device="cpu")
    base = load_hf_model(tiny_model, device="cpu")
    changed = [n for n, p in reloaded.model.named_parameters()
               if not torch.equal(p, dict(base.model.named_parameters())[n])]
    assert changed and all("language_model" in n for n in changed)
    assert (tmp_path / "run" / "metrics.jsonl").is_file()


def test_full_finetuning_uses_a_frozen_copy_and_skips_the_vision_tower(tiny_model, image_dir, tmp_path):
    pairs = make_pairs(2)
    config = TrainConfig(lr=1e-3, max_steps=2, batch_size=2, lora=False, warmup_ratio=0.0)
    result = train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), LocalDPO(), pairs, image_dir, tmp_path / "run", config)
    assert result.history[0]["loss"] == pytest.approx((0.5 + 0.6) / 2 * math.log(2), rel=1e-5)
    assert result.adapter_path is None
    trained = load_hf_model(result.model_path, device="cpu").model.state_dict()
    base = load_hf_model(tiny_model, device="cpu").model.state_dict()
    assert any(not torch.equal(trained[k], base[k]) for k in base if "language_model" in k)
    assert all(torch.equal(trained[k], base[k]) for k in base if "vision" in k or "projector" in k)


def test_reference_free_method_runs_without_reference(tiny_model, image_dir, tmp_path, monkeypatch):
    from harness.training import reference

    monkeypatch.setattr(reference.ModelReference, "groups", lambda *a: pytest.fail("reference was computed"))
    config = TrainConfig(max_steps=1, batch_size=2)
    result = train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), LocalSimPO(), make_pairs(2), image_dir, tmp_path / "run", config)
    assert math.isfinite(result.history[0]["loss"])


def test_reference_cache_is_computed_once_and_reused(tiny_model, image_dir, tmp_path, monkeypatch):
    from harness.training import reference

    cache = tmp_path / "cache"
    config = TrainConfig(max_steps=2, batch_size=2, ref_cache=str(cache), lr=1e-2)
    first = train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), LocalDPO(), make_pairs(4), image_dir, tmp_path / "a", config)
    assert len(list(cache.glob("ref-*.pt"))) == 1
    monkeypatch.setattr(reference.ModelReference, "groups", lambda *a: pytest.fail("cache not reused"))
    second = train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), LocalDPO(), make_pairs(4), image_dir, tmp_path / "b", config)
    assert [h["loss"] for h in second.history] == pytest.approx([h["loss"] for h in first.history], rel=1e-6)


def test_missing_image_names_the_pair(tiny_model, image_dir, tmp_path):
    pairs = make_pairs(2)
    pairs[1].image = "nope.png"
    with pytest.raises(HarnessError, match="record p1, field 'image': image not found"):
        train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), LocalDPO(), pairs, image_dir, tmp_path / "run", TrainConfig(max_steps=1))


def test_existing_checkpoints_need_resume(tiny_model, image_dir, tmp_path):
    config = TrainConfig(max_steps=1, batch_size=2)
    train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), LocalDPO(), make_pairs(2), image_dir, tmp_path / "run", config)
    with pytest.raises(HarnessError, match="pass --resume"):
        train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), LocalDPO(), make_pairs(2), image_dir, tmp_path / "run", config)


def test_gradient_checkpointing_gives_the_same_run(tiny_model, image_dir, tmp_path):
    histories = []
    for checkpointing in (False, True):
        config = TrainConfig(lr=5e-3, max_steps=3, batch_size=4, warmup_ratio=0.0, lora_r=4, lora_dropout=0.0,
                             gradient_checkpointing=checkpointing, merge_lora=False)
        result = train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), LocalDPO(), make_pairs(8), image_dir, tmp_path / str(checkpointing),
                                  config)
        histories.append([h["loss"] for h in result.history])
    assert histories[1] == pytest.approx(histories[0], rel=1e-6)
    assert histories[0][0] != histories[0][-1]


def test_report_to_tensorboard_logs_the_training_metrics(tiny_model, image_dir, tmp_path):
    pytest.importorskip("tensorboard", reason="--report-to tensorboard needs the tensorboard package")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = TrainConfig(lr=5e-3, max_steps=3, batch_size=4, warmup_ratio=0.0, lora_r=4, merge_lora=False,
                         report_to="tensorboard", run_name="tb-test")
    result = train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), LocalDPO(), make_pairs(8), image_dir, tmp_path / "run", config)
    events = list((tmp_path / "run").rglob("events.out.tfevents.*"))
    assert events, "no tensorboard event file written"
    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    assert {"train/loss", "train/rewards/chosen", "train/rewards/rejected", "train/rewards/accuracies",
            "train/rewards/margins", "train/learning_rate", "train/grad_norm", "train/epoch"} <= tags  # TRL's names
    losses = [event.value for event in accumulator.Scalars("train/loss")]
    assert losses == pytest.approx([h["loss"] for h in result.history], rel=1e-6)


def test_training_takes_a_loaded_model_not_a_path(tiny_model, tmp_path, image_dir):
    with pytest.raises(HarnessError, match="loaded vision-language model"):
        train_preference(tiny_model, LocalDPO(), make_pairs(2), image_dir, tmp_path / "run", TrainConfig(max_steps=1))
