"""Prefix sharing: a pair's rows that show the same image and prompt run that prefix once (packed rows with
a 4-D mask), with the same log-probabilities and gradients as the stacked rows; and the reference's fast
adapter switch gives what peft's ``disable_adapter`` gives."""

from __future__ import annotations

import dataclasses
import gc

import pytest
import torch
from helpers import LocalDPO, make_pairs

from harness.models.hf import load_hf_model
from harness.training import TrainConfig, train_preference
from harness.training.batch import Collator, PairDataset
from harness.training.encoding import RowEncoder
from harness.training.logps import can_pack, concatenated_forward, pack_layout, packed_forward, sequence_logps
from harness.training.reference import ModelReference
from harness.training.setup import prepare_model

EXTRAS = ("chosen_on_rejected_image", "rejected_on_chosen_image")


def _mixed_pairs():
    """Text pairs (one image for both sides) and visual pairs (a noised rejected image), interleaved."""
    text = make_pairs(4)
    visual = [dataclasses.replace(p, id=f"v{i}") for i, p in enumerate(make_pairs(3, visual=True))]
    return [text[0], visual[0], text[1], visual[1], text[2], text[3], visual[2]]


def _batch(vlm, image_dir, pairs, extra=()):
    encoder = RowEncoder(vlm.processor, vlm.format_prompt, 256)
    dataset = PairDataset(pairs, image_dir, encoder, with_rejected=True, extra_rows=extra)
    return Collator(vlm.tokenizer.pad_token_id)([dataset[i] for i in range(len(pairs))])


@pytest.fixture(scope="module", params=["sdpa", "eager"])
def vlm(request, tiny_model):
    return load_hf_model(tiny_model, device="cpu", dtype="fp32", attn_implementation=request.param)


def test_shared_flags_follow_the_images(vlm, image_dir):
    batch = _batch(vlm, image_dir, _mixed_pairs(), extra=EXTRAS)
    text = [not p.id.startswith("v") for p in _mixed_pairs()]
    assert batch.shared["rejected"].tolist() == text
    # text pairs have no second image: their "rejected image" rows show the chosen image
    assert batch.shared["chosen_on_rejected_image"].tolist() == text
    assert batch.shared["rejected_on_chosen_image"].tolist() == [True] * len(text)


def test_one_processor_call_per_distinct_image(vlm, image_dir, monkeypatch):
    calls = []
    encoder = RowEncoder(vlm.processor, vlm.format_prompt, 256)
    original = encoder.encode_prompt
    monkeypatch.setattr(encoder, "encode_prompt", lambda *a, **k: calls.append(1) or original(*a, **k))
    dataset = PairDataset(_mixed_pairs(), image_dir, encoder, with_rejected=True)
    dataset[0]
    assert len(calls) == 1  # text pair: chosen and rejected share the image
    dataset[1]
    # visual pair: two images, but its chosen image + prompt are text pair 0's, encoded once per run
    assert len(calls) == 2


def test_layout_packs_text_pairs_and_keeps_visual_pairs_apart(vlm, image_dir):
    batch = _batch(vlm, image_dir, _mixed_pairs())
    layout = pack_layout(batch)
    n_text = int(batch.shared["rejected"].sum())
    assert layout.input_ids.shape[0] == n_text + 2 * (len(batch.ids) - n_text)
    row = 0  # the first text pair: [prefix, chosen response, rejected response]
    prefix = int(batch.chosen.prompt_lens[0])
    chosen_len = int(batch.chosen.attention_mask[0].sum()) - prefix
    rejected_len = int(batch.rejected.attention_mask[0].sum()) - prefix
    positions = layout.position_ids[row, :prefix + chosen_len + rejected_len].tolist()
    assert positions == list(range(prefix + chosen_len)) + list(range(prefix, prefix + rejected_len))
    mask = layout.attention_mask(torch.float32, "cpu")[row, 0] == 0
    first_rejected = prefix + chosen_len
    assert mask[first_rejected, :prefix].all()  # sees the prefix
    assert not mask[first_rejected, prefix:first_rejected].any()  # never the chosen response
    assert mask[first_rejected, first_rejected]


@pytest.mark.parametrize("extra", [(), EXTRAS], ids=["pairs", "with-extra-rows"])
def test_packed_forward_equals_stacked_forward(vlm, image_dir, extra):
    batch = _batch(vlm, image_dir, _mixed_pairs(), extra=extra)
    with torch.no_grad():
        stacked = concatenated_forward(vlm.model, batch)
        packed = packed_forward(vlm.model, batch)
    assert stacked.keys() == packed.keys()
    for group in stacked:
        for key in ("sum", "mean", "tokens", "token_logps"):
            assert packed[group][key].shape == stacked[group][key].shape
            torch.testing.assert_close(packed[group][key], stacked[group][key], rtol=1e-5, atol=1e-5)
        assert stacked[group]["sum"].abs().min() > 0.1  # real log-probs, not an all-zero agreement


def test_packed_gradients_equal_stacked_gradients(tiny_model, image_dir):
    vlm = load_hf_model(tiny_model, device="cpu", dtype="fp32")
    model = prepare_model(vlm.model, vlm.family, TrainConfig(lora_r=4, lora_dropout=0.0))
    for name, param in model.named_parameters():  # LoRA B starts at zero: give the adapters a direction
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05, generator=torch.Generator().manual_seed(len(name)))
    batch = _batch(vlm, image_dir, _mixed_pairs())
    grads = []
    for forward in (concatenated_forward, packed_forward):
        model.zero_grad()
        out = forward(model, batch)
        (out["chosen"]["sum"] - 0.7 * out["rejected"]["sum"]).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    assert all(g.abs().max() > 0 for g in grads[0].values())
    for name in grads[0]:
        scale = float(grads[0][name].abs().max())
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-4 * scale + 1e-7)


def test_dispatch_packs_only_when_asked_and_something_is_shared(vlm, image_dir, monkeypatch):
    from harness.training import logps

    used = []
    monkeypatch.setattr(logps, "packed_forward", lambda m, b: used.append("packed") or {})
    monkeypatch.setattr(logps, "concatenated_forward", lambda m, b: used.append("stacked") or {})
    text_batch = _batch(vlm, image_dir, make_pairs(2))
    visual_batch = _batch(vlm, image_dir, make_pairs(2, visual=True))
    sequence_logps(vlm.model, text_batch, pack=True)
    sequence_logps(vlm.model, text_batch, pack=False)
    sequence_logps(vlm.model, visual_batch, pack=True)  # nothing to share
    assert used == ["packed", "stacked", "stacked"]


def test_can_pack_follows_family_and_attention(tiny_model):
    vlm = load_hf_model(tiny_model, device="cpu", dtype="fp32")
    assert can_pack(vlm.model, vlm.family)
    vlm.model.config._attn_implementation = "flash_attention_2"  # takes no custom 4-D mask
    try:
        assert not can_pack(vlm.model, vlm.family)
    finally:
        vlm.model.config._attn_implementation = "sdpa"
    assert not can_pack(vlm.model, dataclasses.replace(vlm.family, packs_prefix=False))


def test_training_with_and_without_sharing_gives_the_same_run(tiny_model, image_dir, tmp_path):
    config = TrainConfig(lr=5e-3, max_steps=3, batch_size=4, warmup_ratio=0.0, lora_r=4, lora_dropout=0.0,
                         max_length=256, merge_lora=False)
    runs = []
    for share in (True, False):
        result = train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), LocalDPO(), _mixed_pairs() + make_pairs(5)[4:], image_dir,
                                  tmp_path / f"share-{share}", dataclasses.replace(config, share_prefix=share))
        runs.append([step["loss"] for step in result.history])
    assert runs[0] == pytest.approx(runs[1], rel=1e-5, abs=1e-6)
    assert runs[0][0] != runs[0][-1]  # the weights moved
    assert gc.get_freeze_count() == 0  # the loop's gc.freeze() is undone when training ends


@pytest.mark.parametrize("train_projector", [False, True])
def test_fast_adapter_switch_matches_peft_disable_adapter(tiny_model, image_dir, train_projector):
    vlm = load_hf_model(tiny_model, device="cpu", dtype="fp32")
    model = prepare_model(vlm.model, vlm.family, TrainConfig(lora_r=4, train_projector=train_projector))
    for name, param in model.named_parameters():
        if "lora_B" in name or "modules_to_save" in name:
            with torch.no_grad():
                param.add_(torch.randn(param.shape, generator=torch.Generator().manual_seed(1)) * 0.05)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    batch = _batch(vlm, image_dir, make_pairs(3))
    fast = ModelReference(model, adapters_off=True).groups(batch)
    with torch.no_grad(), model.disable_adapter():
        model.eval()
        slow = concatenated_forward(model, batch)
    model.train()
    with torch.no_grad():
        adapted = concatenated_forward(model, batch)
    torch.testing.assert_close(fast["chosen"]["sum"], slow["chosen"]["sum"])
    torch.testing.assert_close(fast["rejected"]["sum"], slow["rejected"]["sum"])
    assert (fast["chosen"]["sum"] - adapted["chosen"]["sum"]).abs().max() > 1e-4  # the adapters matter
    assert {n for n, p in model.named_parameters() if p.requires_grad} == trainable  # switched back on
    assert model.training


def test_packing_is_checked_once_against_stacked_rows(tiny_model, image_dir, tmp_path, monkeypatch, caplog):
    """Before training, one batch runs both ways: a model that mishandles the packed layout (simulated here
    by a packed forward that lets the rejected response see 1 nat more) trains on stacked rows instead."""
    from harness.training import logps

    config = TrainConfig(lr=5e-3, max_steps=2, batch_size=4, warmup_ratio=0.0, lora_r=4, lora_dropout=0.0,
                         max_length=256, merge_lora=False)
    monkeypatch.setattr(logps, "_PACKING_CHECKED", {})
    honest = train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), LocalDPO(), make_pairs(8), image_dir, tmp_path / "honest", config)
    assert list(logps._PACKING_CHECKED.values()) == [True]
    assert "prefix sharing off" not in caplog.text

    real = logps.packed_forward

    def leaky(model, batch):
        out = real(model, batch)
        out["rejected"]["sum"] = out["rejected"]["sum"] + 1.0
        return out

    monkeypatch.setattr(logps, "_PACKING_CHECKED", {})
    monkeypatch.setattr(logps, "packed_forward", leaky)
    with caplog.at_level("WARNING", logger="harness.training.logps"):
        broken = train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), LocalDPO(), make_pairs(8), image_dir, tmp_path / "broken", config)
    assert "prefix sharing off: packed rows differ from stacked rows" in caplog.text
    stacked = train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), LocalDPO(), make_pairs(8), image_dir, tmp_path / "stacked",
                               dataclasses.replace(config, share_prefix=False))
    assert [h["loss"] for h in broken.history] == [h["loss"] for h in stacked.history]
    assert [h["loss"] for h in honest.history] == pytest.approx([h["loss"] for h in stacked.history], rel=1e-5)


def test_packing_verdict_is_kept_for_the_next_process_and_keyed_by_the_stack(vlm, image_dir, monkeypatch):
    """A fresh process (an empty per-process table) on the same libraries, architecture and code reads the
    verdict the last check wrote instead of running both forwards; a replaced compared function is another
    stack, checked again."""
    from harness.training import logps

    batch = _batch(vlm, image_dir, _mixed_pairs())
    forwards = []
    hook = vlm.model.register_forward_pre_hook(lambda *a: forwards.append(1))
    try:
        monkeypatch.setattr(logps, "_PACKING_CHECKED", {})
        assert logps.packing_matches(vlm.model, batch)
        assert logps._verdict_path(vlm.model.config, next(iter(logps._PACKING_CHECKED))).is_file()

        forwards.clear()
        monkeypatch.setattr(logps, "_PACKING_CHECKED", {})
        assert logps.packing_matches(vlm.model, lambda: pytest.fail("the sample is built only for a check"))
        assert forwards == []  # read back, not re-run

        real = logps.packed_forward
        monkeypatch.setattr(logps, "packed_forward", lambda model, b: real(model, b))
        monkeypatch.setattr(logps, "_PACKING_CHECKED", {})
        assert logps.packing_matches(vlm.model, lambda: batch)
        assert len(forwards) == 2  # stacked and packed ran again
    finally:
        hook.remove()


def test_prepared_layout_is_the_layout_and_survives_the_move_to_the_device(vlm, image_dir):
    from harness.training.logps import prepare_packing

    batch = _batch(vlm, image_dir, _mixed_pairs())
    prepare_packing(batch, torch.float32, "cpu")
    expected = pack_layout(batch)
    moved = batch.to("cpu")
    layout = moved.cache["packed"]
    assert torch.equal(layout.input_ids, expected.input_ids) and torch.equal(layout.segment, expected.segment)
    assert ("mask", torch.float32) in moved.cache  # the same device: the mask holds too
    torch.testing.assert_close(packed_forward(vlm.model, moved)["rejected"]["sum"],
                               concatenated_forward(vlm.model, batch)["rejected"]["sum"])
