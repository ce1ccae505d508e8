"""A trained model reused by a run that would train exactly the same thing: keyed by content (pairs with their
images' bytes, base weights, result-shaping options), checked before reuse, copied whole or not at all."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.curation.preferences import PreferencePair
from harness.experiments import pipeline, trained_cache
from harness.experiments.pipeline import NOT_RESULT_SHAPING, RunConfig
from harness.methods.base import Method


class _DPO(Method):
    name = "cache_test_dpo"
    defaults = {"beta": 0.1}

    def loss(self, policy, reference, weights):  # never called: nothing trains here
        raise AssertionError


def _pairs(folder: Path, color: bytes = b"red") -> list[PreferencePair]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "img0.png").write_bytes(b"\x89PNG " + color)
    return [PreferencePair(id="synth_vqa-0", image=str(folder / "img0.png"), prompt="is there a lesion?",
                           chosen="a nodule in the left upper lobe", rejected="no lesion", kind="text")]


def _key(tmp_path, pairs=None, base="testbed@abc123", method=None, **train):
    config = RunConfig(method="dpo", model="tiny", train={"max_steps": 4, "lr": 1e-4, **train})
    return trained_cache.training_key(base, method or _DPO(), pairs or _pairs(tmp_path / "a"),
                                      config.train.to_dict(), NOT_RESULT_SHAPING)


def test_key_follows_content_not_paths_or_names(tmp_path):
    same = _key(tmp_path)
    assert _key(tmp_path, pairs=_pairs(tmp_path / "copied-elsewhere")) == same  # the images' bytes, not their path
    assert _key(tmp_path, base="renamed@abc123") == same  # the weights' fingerprint, not the model's name
    assert _key(tmp_path, save_every=7, log_every=3) == same  # checkpointing and logging shape no result
    assert _key(tmp_path, pairs=_pairs(tmp_path / "b", color=b"blue")) != same  # an image's bytes changed
    assert _key(tmp_path, base="testbed@def456") != same  # other base weights
    assert _key(tmp_path, lr=2e-4) != same
    assert _key(tmp_path, seed=1) != same
    assert _key(tmp_path, method=_DPO(beta=0.5)) != same
    edited = _pairs(tmp_path / "c")
    edited[0].rejected = "a nodule in the right upper lobe"
    assert _key(tmp_path, pairs=edited) != same


def _finished_run(home: Path, run_id: str) -> Path:
    train = home / "runs" / run_id / "train"
    (train / "model").mkdir(parents=True)
    (train / "model" / "model.safetensors").write_bytes(b"weights of " + run_id.encode())
    (train / "model" / "config.json").write_text("{}")
    (train / "metrics.jsonl").write_text('{"loss": 0.69}\n')
    return train


def test_a_finished_training_is_found_and_copied_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    train = _finished_run(tmp_path, "sweep-run")
    assert trained_cache.find("k1") is None
    trained_cache.remember("k1", "sweep-run", train)
    assert trained_cache.find("k1") == train
    assert trained_cache.find("k2") is None
    model = trained_cache.copy_into(train, tmp_path / "runs" / "seed-run" / "train", "k1", "sweep-run")
    assert (model / "model.safetensors").read_bytes() == b"weights of sweep-run"
    assert (model.parent / "metrics.jsonl").read_text() == '{"loss": 0.69}\n'
    assert trained_cache.find("k1") == train  # the index still names the run that trained it


def test_a_stale_index_entry_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    train = _finished_run(tmp_path, "run-a")
    trained_cache.remember("k1", "run-a", train)
    trained_cache.remember("k2", "run-a", train)  # run-a's folder now says it trained k2, not k1
    assert trained_cache.find("k1") is None
    shutil.rmtree(train / "model")  # a deleted model is no model to reuse
    assert trained_cache.find("k2") is None


def test_interrupted_copy_leaves_no_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    train = _finished_run(tmp_path, "run-a")
    real = shutil.copytree

    def dies_after_the_first_file(src, dst, **kwargs):
        real(src, dst, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "copytree", dies_after_the_first_file)
    out = tmp_path / "runs" / "run-b" / "train"
    with pytest.raises(KeyboardInterrupt):
        trained_cache.copy_into(train, out, "k1", "run-a")
    assert not (out / "model").exists()
    assert not [p for p in out.glob(".tmp-*")]


def test_pipeline_trains_once_for_identical_content(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    import harness.models.hf
    import harness.training

    trained = []

    def fake_train(model, method, pairs, image_root, out, config, resume=False):
        (Path(out) / "model").mkdir(parents=True)
        (Path(out) / "model" / "config.json").write_text(json.dumps({"lr": config.lr}))
        trained.append(config.lr)
        return type("Result", (), {"model_path": Path(out) / "model"})()

    monkeypatch.setattr(harness.training, "train_preference", fake_train)
    monkeypatch.setattr(harness.models.hf, "load_hf_model", lambda *a, **k: object())
    monkeypatch.setattr(pipeline, "model_fingerprint", lambda folder: "abc123")
    pairs = _pairs(tmp_path / "pairs")

    def run(run_id, **train):
        config = RunConfig(method="dpo", model="tiny", train={"max_steps": 4, "lr": 1e-4, **train})
        return pipeline.train(config, _DPO(), pairs, tmp_path, tmp_path / "runs" / run_id, base_name="tiny@abc123")

    run("plain-run")  # outside a study: trains, records nothing
    assert not (tmp_path / "trained").exists()
    with trained_cache.reusing():
        first = run("sweep-lr-1e-4")
        run("sweep-lr-2e-4", lr=2e-4)
        reused = run("seed-0", save_every=5)  # the same training as the first sweep run
    assert trained == [1e-4, 1e-4, 2e-4]
    assert (reused / "config.json").read_text() == (first / "config.json").read_text()
    assert "sweep-lr-1e-4" in (reused.parent / "reused_from.json").read_text()
