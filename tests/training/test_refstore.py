"""The shared reference store: a run reading stored reference log-probs trains bit for bit as one computing
them; the key follows the weights and the batch content; an interrupted write leaves no entry."""

from __future__ import annotations

import pytest
import torch
from helpers import LocalDPO, make_pairs

from harness.models.hf import load_hf_model
from harness.training import TrainConfig, refstore, train_preference
from harness.training.batch import PreferenceBatch, Rows
from harness.training.reference import ModelReference

CONFIG = dict(max_steps=2, batch_size=2, lr=1e-2, warmup_ratio=0.0, lora_dropout=0.0)


def _train(tiny_model, image_dir, out, pairs=None, **changes):
    vlm = load_hf_model(tiny_model, device="cpu", dtype="fp32")
    return train_preference(vlm, LocalDPO(), pairs or make_pairs(4), image_dir, out,
                            TrainConfig(**{**CONFIG, **changes}))


def _weights(result) -> dict:
    from safetensors.torch import load_file

    return load_file(str(result.model_path / "model.safetensors"))


def _counting(monkeypatch) -> list[int]:
    calls = []
    forward = ModelReference._forward

    def counted(self, batch):
        calls.append(len(batch.ids))
        return forward(self, batch)

    monkeypatch.setattr(ModelReference, "_forward", counted)
    return calls


def test_stored_reference_trains_bit_for_bit_like_the_forward(tiny_model, image_dir, tmp_path, monkeypatch):
    plain = _train(tiny_model, image_dir, tmp_path / "plain")
    calls = _counting(monkeypatch)
    with refstore.sharing(tmp_path / "store"), refstore.bind(weights="w1", precision="fp32", lora=True):
        first = _train(tiny_model, image_dir, tmp_path / "first")
        assert len(calls) == 2  # 2 steps, one micro-batch each: computed and stored
        assert len(list((tmp_path / "store").rglob("*.pt"))) == 2
        # another learning rate, same pairs, seed and batch size: the same batches, read back
        other_rate = _train(tiny_model, image_dir, tmp_path / "other", lr=5e-3)
        again = _train(tiny_model, image_dir, tmp_path / "again")
    assert len(calls) == 2, "a stored batch was computed again"
    for result in (first, again):
        assert [h["loss"] for h in result.history] == [h["loss"] for h in plain.history]  # exact, not approx
        assert all(torch.equal(_weights(result)[k], v) for k, v in _weights(plain).items())
    # the first step's loss depends on the reference only: the same at any rate
    assert other_rate.history[0]["loss"] == plain.history[0]["loss"]


def test_other_weights_or_other_pairs_miss(tiny_model, image_dir, tmp_path, monkeypatch):
    calls = _counting(monkeypatch)
    with refstore.sharing(tmp_path / "store"):
        with refstore.bind(weights="w1", precision="fp32", lora=True):
            _train(tiny_model, image_dir, tmp_path / "a", max_steps=1)
        assert len(calls) == 1
        with refstore.bind(weights="w2", precision="fp32", lora=True):  # new base weights: nothing reused
            _train(tiny_model, image_dir, tmp_path / "b", max_steps=1)
        assert len(calls) == 2
        changed = make_pairs(4)
        for pair in changed:
            pair.rejected = pair.rejected + " and an effusion"
        with refstore.bind(weights="w1", precision="fp32", lora=True):  # the same ids, other text
            _train(tiny_model, image_dir, tmp_path / "c", pairs=changed, max_steps=1)
        assert len(calls) == 3
        with refstore.bind(weights="w1", precision="fp32", lora=True):  # the first content again: a hit
            _train(tiny_model, image_dir, tmp_path / "d", max_steps=1)
    assert len(calls) == 3


def test_nothing_is_stored_outside_a_study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls = []

    def compute(batch):
        calls.append(1)
        return {"chosen": {"sum": torch.tensor([-1.0])}}

    with refstore.bind(weights="w1"):  # no sharing(): the plain forward every time
        refstore.lookup(_Reference(), _batch([1, 2]), compute)
        refstore.lookup(_Reference(), _batch([1, 2]), compute)
    with refstore.sharing(tmp_path / "store"):  # no bound model: nothing to key the entry by
        refstore.lookup(_Reference(), _batch([1, 2]), compute)
    assert len(calls) == 3 and not list(tmp_path.rglob("*.pt"))


def _batch(tokens) -> PreferenceBatch:
    ids = torch.tensor([tokens])
    rows = Rows(ids, torch.ones_like(ids), torch.ones_like(ids, dtype=torch.bool))
    return PreferenceBatch(["p0"], torch.ones(1), rows, rows)


class _Reference:
    pack, adapters_off = False, True

    def __init__(self):
        self.model = torch.nn.Linear(2, 2)


def test_key_reads_tensor_content_not_pair_ids():
    identity = {"weights": "w1"}
    forward = {"pack": False}
    same = refstore.batch_key(identity, _batch([1, 2, 3]), forward)
    renamed = _batch([1, 2, 3])
    renamed.ids = ["another-name"]
    assert refstore.batch_key(identity, renamed, forward) == same
    assert refstore.batch_key(identity, _batch([1, 2, 4]), forward) != same
    assert refstore.batch_key({"weights": "w2"}, _batch([1, 2, 3]), forward) != same
    assert refstore.batch_key(identity, _batch([1, 2, 3]), {"pack": True}) != same


def test_interrupted_write_leaves_no_half_entry(tmp_path, monkeypatch):
    def compute(batch):
        return {"chosen": {"sum": torch.tensor([-1.5])}, "rejected": {"sum": torch.tensor([-2.5])}}

    real_save = torch.save

    def dies_midway(obj, path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_midway)
    with refstore.sharing(tmp_path), refstore.bind(weights="w1"):
        with pytest.raises(KeyboardInterrupt):
            refstore.lookup(_Reference(), _batch([1, 2, 3]), compute)
        assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # neither the entry nor its temporary file
        monkeypatch.setattr(torch, "save", real_save)
        first = refstore.lookup(_Reference(), _batch([1, 2, 3]), compute)
        stored = refstore.lookup(_Reference(), _batch([1, 2, 3]), lambda b: pytest.fail("not read back"))
    assert len([p for p in tmp_path.rglob("*.pt")]) == 1
    assert torch.equal(stored["chosen"]["sum"], first["chosen"]["sum"])
    assert torch.equal(stored["rejected"]["sum"], first["rejected"]["sum"])
