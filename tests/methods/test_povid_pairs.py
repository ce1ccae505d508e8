"""POVID's pair builder: hallucinated text pairs and whole-image diffusion-noised visual pairs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harness.errors import HarnessError
from harness.methods import METHODS, PairContext
from harness.preferences import read_pairs
from harness.tasks.base import Task


@pytest.fixture
def samples(tmp_path_factory):
    """Two questions on one in-memory image, one on an image file (``datasets``' undecoded form)."""
    gradient = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1)), mode="L")
    on_disk = tmp_path_factory.mktemp("images") / "scan.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(on_disk)
    return [
        {"id": "a", "image": gradient, "question": "Is there a fracture?", "answer": "no", "answer_type": "closed"},
        {"id": "b", "image": gradient, "question": "Which lung?", "answer": "left lung", "answer_type": "open"},
        {"id": "c", "image": {"path": str(on_disk), "bytes": None}, "question": "What modality?", "answer": "CT",
         "answer_type": "open"},
    ]


def test_povid_builds_one_text_and_one_visual_pair_per_sample(samples, tmp_path):
    method = METHODS.get("povid")()
    assert method.has_pair_builder()
    pairs = method.build_pairs(PairContext(task=Task(), samples=samples, model=None, output_dir=tmp_path))
    assert [p.id for p in pairs] == ["a-text", "a-visual", "b-text", "b-visual", "c-text", "c-visual"]
    text = {p.id: p for p in pairs if p.kind == "text"}
    assert text["a-text"].rejected == "yes" and text["a-text"].prompt == "Is there a fracture?\nAnswer yes or no."
    assert all(p.rejected != p.chosen and p.rejected_image is None for p in text.values())
    for pair in (p for p in pairs if p.kind == "visual"):
        assert pair.rejected == pair.chosen and pair.rejected_image != pair.image
        original = np.asarray(Image.open(tmp_path / pair.image), dtype=np.float64)
        noised = np.asarray(Image.open(tmp_path / pair.rejected_image), dtype=np.float64)
        assert original.shape == noised.shape
        # step 500 of 1000 keeps sqrt(abar) ~ 0.28 of the signal: the image is mostly noise
        assert np.abs(original - noised).mean() > 30
    # samples a and b share one image: one copy, one noised copy
    assert len(list((tmp_path / "images").iterdir())) == 2
    assert len(list((tmp_path / "povid_noised").iterdir())) == 2
    assert [p.id for p in read_pairs(tmp_path / "povid_pairs.jsonl")] == [p.id for p in pairs]


def test_povid_rerun_reuses_images_and_gives_the_same_pairs(samples, tmp_path):
    method = METHODS.get("povid")()
    context = PairContext(task=Task(), samples=samples, model=None, output_dir=tmp_path, seed=3)
    first = method.build_pairs(context)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "povid_noised").iterdir()}
    again = method.build_pairs(context)
    assert [p.to_record() for p in first] == [p.to_record() for p in again]
    assert stamps == {p: p.stat().st_mtime_ns for p in (tmp_path / "povid_noised").iterdir()}


def test_povid_options_select_kinds_and_noise_step(samples, tmp_path):
    method = METHODS.get("povid")()
    context = PairContext(task=None, samples=samples[:1], model=None, output_dir=tmp_path,
                          options={"kinds": "visual", "noise_step": "100"})
    pairs = method.build_pairs(context)
    assert [p.kind for p in pairs] == ["visual"] and pairs[0].rejected_image.endswith("-k100.png")
    with pytest.raises(HarnessError, match="unknown pair kinds"):
        method.build_pairs(PairContext(task=None, samples=[], model=None, output_dir=tmp_path,
                                       options={"kinds": ["audio"]}))
    with pytest.raises(HarnessError, match="unknown option"):
        method.build_pairs(PairContext(task=None, samples=[], model=None, output_dir=tmp_path,
                                       options={"noise": "100"}))
