"""A model's fingerprint is the content of its weights and configuration, never its path or name."""

from __future__ import annotations

import os
import shutil

import pytest

from harness.models.fingerprint import file_digest, identity_files, model_fingerprint
from harness.models.tiny import TinyConfig, build_tiny_model

SMALL = TinyConfig(vision_hidden=16, vision_layers=1, text_hidden=16, text_layers=1, heads=2, vocab_size=300)


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fingerprint")
    return (build_tiny_model(tmp / "seed0", seed=0, config=SMALL),
            build_tiny_model(tmp / "seed1", seed=1, config=SMALL))


def test_two_tiny_models_built_with_different_seeds_have_different_fingerprints(two_seeds):
    seed0, seed1 = two_seeds
    sizes0 = sorted((p.name, p.stat().st_size) for p in seed0.glob("*.safetensors"))
    sizes1 = sorted((p.name, p.stat().st_size) for p in seed1.glob("*.safetensors"))
    assert sizes0 == sizes1  # names and sizes alone cannot tell them apart
    assert model_fingerprint(seed0) != model_fingerprint(seed1)


def test_a_copy_elsewhere_is_the_same_model_and_cards_or_stamps_do_not_count(two_seeds, tmp_path):
    seed0, _ = two_seeds
    copy = shutil.copytree(seed0, tmp_path / "somewhere" / "else")
    (copy / "README.md").write_text("a model card")
    (copy / "tiny.json").write_text('{"build_seconds": 12.5}')
    assert model_fingerprint(copy) == model_fingerprint(seed0)
    assert [p.name for p in identity_files(copy)] == [p.name for p in identity_files(seed0)]
    assert any(p.suffix == ".safetensors" for p in identity_files(copy))
    assert any("config" in p.name for p in identity_files(copy))


def test_weights_rewritten_in_place_with_the_same_size_change_the_fingerprint(two_seeds, tmp_path):
    from safetensors.torch import load_file, save_file

    model = shutil.copytree(two_seeds[0], tmp_path / "model")
    before = model_fingerprint(model)
    weights = next(model.glob("*.safetensors"))
    size = weights.stat().st_size
    tensors = load_file(weights)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 1.0
    save_file(tensors, weights, metadata={"format": "pt"})  # the header transformers writes
    assert weights.stat().st_size == size
    assert model_fingerprint(model) != before


def test_the_digest_cache_notices_a_rewrite_with_the_same_size_and_mtime_restored(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"a" * (2 << 20))  # above the size the cache keeps
    first = file_digest(path)
    stat = path.stat()
    replacement = tmp_path / "new.bin"
    replacement.write_bytes(b"b" * (2 << 20))
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, path)  # same path, size and mtime, another inode
    assert file_digest(path) != first
    assert file_digest(path) == file_digest(path)  # and is stable
