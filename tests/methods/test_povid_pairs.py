"""POVID's pair builder and loss: the released form (hallucinated text; the model's own greedy answer on the
diffusion-noised image, both scored on the clean image; the two DPO terms mixed 0.5/0.5) and the pooled form."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from PIL import Image

from harness.core.errors import HarnessError
from harness.curation.preferences import read_pairs
from harness.methods import METHODS, PairContext
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


class ScriptedModel:
    """A stand-in target model: answers from a script by prompt, recording the images it was shown."""

    name = "scripted"

    def __init__(self, answers: dict[str, str]):
        self.answers = answers
        self.seen: list[tuple[str, np.ndarray]] = []

    def generate(self, images, prompts, config=None):
        assert config is not None and not config.do_sample  # greedy
        self.seen.extend((p, np.asarray(i)) for i, p in zip(images, prompts))
        return [self.answers[p.split("\n")[0]] for p in prompts]


def povid():
    return METHODS.get("povid")()


def test_released_mixing_is_half_text_dpo_plus_half_image_dpo(make_logprobs):
    """One sample's two pairs through POVID's loss and the core's reduction mean(w * loss) give the release's
    ``0.5 * self_losses + 0.5 * losses`` (tool/dpo_trainer_inherent.py), computed here by hand."""
    # pair 0: text (ground truth vs hallucination); pair 1: image side (ground truth vs greedy-on-noised)
    policy = make_logprobs([-10.0, -10.0], [-21.0, -14.5], [4, 4], [4, 5])
    reference = make_logprobs([-12.0, -12.0], [-20.0, -15.0], [4, 4], [4, 5])
    out = povid().loss(policy, reference, torch.ones(2))
    batch_loss = float((torch.ones(2) * out.losses).mean())
    # beta 0.1; r(y_w) = 2, r(hallucinated) = -1, r(greedy) = 0.5
    text_term = math.log1p(math.exp(-0.1 * (2 - (-1))))
    image_term = math.log1p(math.exp(-0.1 * (2 - 0.5)))
    assert batch_loss == pytest.approx(0.5 * text_term + 0.5 * image_term, abs=1e-9)
    assert batch_loss == pytest.approx(0.587656, abs=1e-6)  # the docstring's worked example
    # not a one-sigmoid form -log sigmoid(beta (2 r_w - r_text - r_image)) / 2
    assert batch_loss != pytest.approx(math.log1p(math.exp(-0.1 * (4 - (-1) - 0.5))) / 2, abs=1e-3)


def test_released_image_side_rejects_the_greedy_answer_on_the_noised_image(samples, tmp_path):
    model = ScriptedModel({"Is there a fracture?": "yes, a rib fracture", "Which lung?": "right lung",
                           "What modality?": "MRI"})
    pairs = povid().build_pairs(PairContext(task=Task(), samples=samples, model=model, output_dir=tmp_path))
    assert [p.id for p in pairs] == ["a-text", "a-image", "b-text", "b-image", "c-text", "c-image"]
    image_side = {p.id: p for p in pairs if p.source == "povid-noised-greedy"}
    assert image_side["b-image"].chosen == "left lung" and image_side["b-image"].rejected == "right lung"
    shown = dict((prompt.split("\n")[0], pixels) for prompt, pixels in model.seen)
    for pair, question in zip(image_side.values(), ("Is there a fracture?", "Which lung?", "What modality?")):
        # scored on the clean image (same-image pair), answered on the noised one
        assert pair.kind == "text" and pair.rejected_image is None
        assert pair.extra == {"noise_step": 500, "num_steps": 1000, "schedule": "sigmoid",
                              "noised_image": pair.extra["noised_image"]}
        noised = np.asarray(Image.open(tmp_path / pair.extra["noised_image"]).convert("RGB"))
        clean = np.asarray(Image.open(tmp_path / pair.image).convert("RGB"))
        assert np.array_equal(shown[question], noised) and not np.array_equal(noised, clean)
    text = {p.id: p for p in pairs if p.source == "povid-hallucination"}
    assert text["a-text"].rejected == "yes"  # the closed answer flipped
    assert all(p.rejected != p.chosen and p.rejected_image is None for p in text.values())
    assert [p.id for p in read_pairs(tmp_path / "povid_pairs.jsonl")] == [p.id for p in pairs]


def test_unusable_rejected_answers_are_skipped_and_counted(samples, tmp_path, caplog):
    """A greedy answer with the truth's words or none, or an answer no edit verifiably contradicts, makes no pair."""
    samples = samples + [{"id": "d", "image": samples[0]["image"], "question": "What fruit?", "answer": "banana",
                          "answer_type": "open"}]
    model = ScriptedModel({"Is there a fracture?": "No.", "Which lung?": "  ", "What modality?": "MRI",
                           "What fruit?": "an apple"})
    with caplog.at_level(logging.INFO, logger="baselines.povid"):
        pairs = povid().build_pairs(PairContext(task=Task(), samples=samples, model=model, output_dir=tmp_path))
    assert [p.id for p in pairs] == ["a-text", "b-text", "c-text", "c-image", "d-image"]
    assert ("skipped: no verified hallucination 1, greedy answer = ground truth 1, empty greedy answer 1"
            in caplog.text)
    text = {p.id: p for p in pairs if p.source == "povid-hallucination"}
    assert text["c-text"].rejected == "MRI" and text["c-text"].extra["contradictions"][0]["kind"] == "modality"


def test_released_pairs_from_the_tiny_model_regenerate(samples, tiny_model_dir, tmp_path):
    """On a real model, each image-side rejected answer is what the model answers greedily on the noised image."""
    from harness.models.base import GenerationConfig
    from harness.models.hf import load_hf_model

    model = load_hf_model(tiny_model_dir, device="cpu", dtype="fp32")
    context = PairContext(task=Task(), samples=samples, model=model, output_dir=tmp_path,
                          options={"max_new_tokens": "6"})
    pairs = povid().build_pairs(context)
    image_side = [p for p in pairs if p.source == "povid-noised-greedy"]
    # the untrained model's 6-token answers never repeat these ground truths
    assert [p.id for p in image_side] == ["a-image", "b-image", "c-image"]
    # regenerated in the builder's batch (all three questions), so the padding is the same
    images = [Image.open(tmp_path / p.extra["noised_image"]).convert("RGB") for p in image_side]
    again = model.generate(images, [p.prompt for p in image_side], GenerationConfig(max_new_tokens=6))
    assert [p.rejected for p in image_side] == [a.strip() for a in again]
    assert all(p.rejected.strip() and p.rejected != p.chosen and p.rejected_image is None for p in image_side)
    # a rerun replays the chunk journal: the same pairs without generating again
    model_calls = []
    original = model.generate
    model.generate = lambda *a, **k: model_calls.append(1) or original(*a, **k)
    assert [p.as_dict() for p in povid().build_pairs(context)] == [p.as_dict() for p in pairs]
    assert not model_calls


def test_builder_needs_the_model_only_for_the_released_image_side(samples, tmp_path):
    cls = METHODS.get("povid")
    assert cls.builder_needs_model({}) is True
    assert cls.builder_needs_model({"variant": "pooled"}) is False
    assert cls.builder_needs_model({"kinds": "text"}) is False
    with pytest.raises(HarnessError, match="pass a model"):
        povid().build_pairs(PairContext(task=Task(), samples=samples, model=None, output_dir=tmp_path))
    pairs = povid().build_pairs(PairContext(task=Task(), samples=samples, model=None, output_dir=tmp_path,
                                            options={"kinds": "text"}))
    assert [p.id for p in pairs] == ["a-text", "b-text", "c-text"]


def test_pooled_variant_builds_one_text_and_one_visual_pair_per_sample(samples, tmp_path):
    method = povid()
    assert method.has_pair_builder()
    pairs = method.build_pairs(PairContext(task=Task(), samples=samples, model=None, output_dir=tmp_path,
                                           options={"variant": "pooled"}))
    assert [p.id for p in pairs] == ["a-text", "a-visual", "b-text", "b-visual", "c-text", "c-visual"]
    text = {p.id: p for p in pairs if p.kind == "text"}
    assert text["a-text"].rejected == "yes" and text["a-text"].prompt == "Is there a fracture?\nAnswer yes or no."
    assert all(p.rejected != p.chosen and p.rejected_image is None for p in text.values())
    for pair in (p for p in pairs if p.kind == "visual"):
        assert pair.rejected == pair.chosen and pair.rejected_image != pair.image
        assert pair.source == "povid-diffusion-sigmoid-500" and pair.extra["schedule"] == "sigmoid"
        original = np.asarray(Image.open(tmp_path / pair.image), dtype=np.float64)
        noised = np.asarray(Image.open(tmp_path / pair.rejected_image), dtype=np.float64)
        assert original.shape == noised.shape and np.abs(original - noised).mean() > 20
    # samples a and b share one image: one copy, one noised copy
    assert len(list((tmp_path / "images").iterdir())) == 2
    assert len(list((tmp_path / "povid_noised").iterdir())) == 2


def _correlation(pair, root) -> float:
    original = np.asarray(Image.open(root / pair.image).convert("L"), dtype=np.float64).ravel()
    noised = np.asarray(Image.open(root / pair.rejected_image).convert("L"), dtype=np.float64).ravel()
    return float(np.corrcoef(original, noised)[0, 1])


def test_schedule_sets_how_much_of_the_image_survives(samples, tmp_path):
    """Step 500 keeps sqrt(abar) = 0.86 of the signal on the release's sigmoid schedule, 0.28 on DDPM's linear one."""
    kept = {}
    for schedule in ("sigmoid", "linear"):
        pairs = povid().build_pairs(PairContext(
            task=None, samples=samples[:1], model=None, output_dir=tmp_path / schedule,
            options={"variant": "pooled", "kinds": "visual", "schedule": schedule}))
        assert pairs[0].rejected_image.endswith(f"-{schedule}-k500-of1000-s0.png")
        kept[schedule] = _correlation(pairs[0], tmp_path / schedule)
    assert kept["sigmoid"] > 0.6 and kept["linear"] < 0.35


def test_pooled_rerun_reuses_images_and_gives_the_same_pairs(samples, tmp_path):
    context = PairContext(task=Task(), samples=samples, model=None, output_dir=tmp_path, seed=3,
                          options={"variant": "pooled"})
    first = povid().build_pairs(context)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "povid_noised").iterdir()}
    again = povid().build_pairs(context)
    assert [p.to_record() for p in first] == [p.to_record() for p in again]
    assert stamps == {p: p.stat().st_mtime_ns for p in (tmp_path / "povid_noised").iterdir()}


def test_options_select_kinds_and_step_and_reject_unknown_ones(samples, tmp_path):
    pairs = povid().build_pairs(PairContext(task=None, samples=samples[:1], model=None, output_dir=tmp_path,
                                            options={"variant": "pooled", "kinds": "visual", "noise_step": "100"}))
    assert [p.kind for p in pairs] == ["visual"] and "-k100-" in pairs[0].rejected_image
    with pytest.raises(HarnessError, match="unknown pair kinds"):
        povid().build_pairs(PairContext(task=None, samples=[], model=None, output_dir=tmp_path,
                                        options={"kinds": ["audio"]}))
    with pytest.raises(HarnessError, match=r"has no option 'noise'; did you mean 'noise_step'\?") as error:
        povid().build_pairs(PairContext(task=None, samples=[], model=None, output_dir=tmp_path,
                                        options={"noise": "100"}))
    assert "\n" not in str(error.value)
    with pytest.raises(HarnessError, match="variant='pool'"):
        povid().build_pairs(PairContext(task=None, samples=[], model=None, output_dir=tmp_path,
                                        options={"variant": "pool"}))
