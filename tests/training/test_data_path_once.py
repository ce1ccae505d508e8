"""The shared per-step overhead cuts: a pair's image + prompt encoded once per distinct content, the next
batch prepared while a step runs, and the reference's eval mode switched without a module walk. Each must
give exactly what the plain path gives."""

from __future__ import annotations

import pytest
import torch
from helpers import make_pairs

from harness.core.errors import DataError
from harness.models.hf import load_hf_model
from harness.training import batch as batch_module
from harness.training.batch import Collator, PairDataset
from harness.training.encoding import RowEncoder
from harness.training.loop import Prefetch
from harness.training.modes import evaluating


@pytest.fixture(scope="module")
def vlm(tiny_model):
    return load_hf_model(tiny_model, device="cpu", dtype="fp32")


def _same(a, b) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if key in ("id", "weight", "shared"):
            assert a[key] == b[key]
            continue
        assert a[key].prompt_len == b[key].prompt_len and torch.equal(a[key].input_ids, b[key].input_ids)
        assert all(torch.equal(a[key].images[k], b[key].images[k]) for k in a[key].images)


def test_a_repeated_image_and_prompt_is_encoded_once_and_identically(vlm, image_dir, monkeypatch):
    pairs = make_pairs(8) + make_pairs(4, visual=True)  # 4 images, one prompt; visual pairs add 4 noised ones
    for pair in pairs[8:]:
        pair.id = "v" + pair.id
    encoder = RowEncoder(vlm.processor, vlm.format_prompt, 256)
    calls = []
    original = encoder.encode_prompt
    monkeypatch.setattr(encoder, "encode_prompt", lambda image, prompt: calls.append(prompt) or original(image, prompt))
    dataset = PairDataset(pairs, image_dir, encoder, with_rejected=True)
    items = [dataset[i] for i in range(len(pairs))]
    assert len(calls) == 8  # img0-3 and noised0-3, each once
    fresh = RowEncoder(vlm.processor, vlm.format_prompt, 256)  # a new encoder: nothing remembered
    for i, item in enumerate(items):
        _same(item, PairDataset(pairs, image_dir, fresh, with_rejected=True)[i])
    dataset[0]
    assert len(calls) == 8  # a later epoch encodes nothing again
    other = make_pairs(1)[0]
    other.prompt = "what organ is shown?"
    PairDataset([other], image_dir, encoder, with_rejected=True)[0]
    assert calls[-1] == "what organ is shown?"  # same image, another prompt: encoded


def test_the_prompt_memory_is_bounded(vlm, image_dir, monkeypatch):
    encoder = RowEncoder(vlm.processor, vlm.format_prompt, 256)
    dataset = PairDataset(make_pairs(4), image_dir, encoder, with_rejected=True)
    first = dataset.pairs[0]
    size = batch_module._nbytes(dataset.encoded_prompt(dataset._image(first, "chosen"), first.prompt))
    monkeypatch.setattr(batch_module, "PROMPT_MEMO_BYTES", 2 * size)
    for i in range(4):
        dataset[i]
    assert len(dataset._prompts) == 2 and dataset._prompt_bytes <= 2 * size


def test_prefetch_yields_the_same_batches_and_raises_where_asked(vlm, image_dir):
    encoder = RowEncoder(vlm.processor, vlm.format_prompt, 256)
    pairs = make_pairs(6)
    pairs[5].image = "missing.png"
    dataset = PairDataset(pairs, image_dir, encoder, with_rejected=True)
    collate = Collator(vlm.tokenizer.pad_token_id)
    indices = [[0, 1], [2, 3], [4, 5]]
    ahead = Prefetch(collate([dataset[i] for i in chunk]) for chunk in indices)
    try:
        for chunk in indices[:2]:
            got, want = next(ahead), collate([dataset[i] for i in chunk])
            assert got.ids == want.ids and torch.equal(got.chosen.input_ids, want.chosen.input_ids)
        with pytest.raises(DataError, match="missing.png"):  # the third batch's bad image, at the third call
            next(ahead)
    finally:
        ahead.close()


def test_evaluating_switches_every_module_and_restores_the_mode(vlm):
    model = vlm.model
    model.train()
    with evaluating(model):
        assert not any(m.training for m in model.modules())
    assert all(m.training for m in model.modules())
    model.eval()
    with evaluating(model):
        assert not model.training
    assert not any(m.training for m in model.modules())
