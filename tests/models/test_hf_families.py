"""Every supported family: build a tiny checkpoint, save it, load it through ``load_hf_model`` and answer
real VQA-RAD questions about their real images."""

from __future__ import annotations

import importlib.util
import re

import pytest

from harness.models.base import GenerationConfig
from harness.models.hf import FAMILIES, HFVisionLanguageModel, load_hf_model

FAMILY_OF_BUILD = {
    "llava": "llava", "idefics3": "idefics3", "smolvlm": "idefics3", "qwen2_vl": "qwen2_vl",
    "qwen2_5_vl": "qwen2_vl", "paligemma": "paligemma",
}


def _skip_missing(build_name: str) -> None:
    if build_name == "smolvlm" and importlib.util.find_spec("num2words") is None:
        pytest.skip("SmolVLM2's processor needs the num2words package, which is not installed "
                    "(SmolVLM v1 checkpoints are Idefics3 and are covered by the idefics3 case)")


@pytest.fixture(scope="module", params=sorted(FAMILY_OF_BUILD))
def loaded(request, tiny_checkpoint) -> HFVisionLanguageModel:
    _skip_missing(request.param)
    model = load_hf_model(tiny_checkpoint(request.param), device="cpu", dtype="fp32")
    model.build_name = request.param
    return model


def test_loads_with_the_right_family(loaded):
    assert loaded.family is FAMILIES[FAMILY_OF_BUILD[loaded.build_name]]
    assert loaded.describe()["family"] == loaded.family.name
    assert loaded.model.dtype.is_floating_point


def test_generates_answers_for_real_vqa_rad_items(loaded, vqa_rad_items):
    images = [image for image, _, _ in vqa_rad_items]
    prompts = [question for _, question, _ in vqa_rad_items]
    answers = loaded.generate(images, prompts, GenerationConfig(max_new_tokens=3))
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    # left padding must not change greedy answers: batched equals one at a time
    single = [loaded.generate([i], [p], GenerationConfig(max_new_tokens=3))[0] for i, p in zip(images, prompts)]
    assert answers == single


def test_prompt_carries_the_image_tokens(loaded, vqa_rad_items):
    image, question, _ = vqa_rad_items[0]
    inputs = loaded.processor_inputs([image], [loaded.format_prompt(question)], "left")
    image_token_id = loaded.model.config.image_token_id if hasattr(loaded.model.config, "image_token_id") \
        else loaded.model.config.image_token_index
    # the tiny towers yield 4 image tokens; Qwen's follows the image's aspect (grid cells merged 2x2)
    expected = int(inputs["image_grid_thw"].prod()) // 4 if "image_grid_thw" in inputs else 4
    assert int((inputs["input_ids"] == image_token_id).sum()) == expected
    assert question in loaded.tokenizer.decode(inputs["input_ids"][0])


def test_the_image_changes_the_logits(loaded, vqa_rad_items):
    import torch

    (first, question, _), (second, _, _) = vqa_rad_items[:2]
    logits = []
    for image in (first, second.rotate(90)):
        inputs = loaded.processor_inputs([image], [loaded.format_prompt(question)], "left")
        with torch.inference_mode():
            logits.append(loaded.model(**inputs).logits[0, -1])
    assert not torch.allclose(logits[0], logits[1])


def test_family_module_names_match_the_model(loaded):
    names = [n for n, m in loaded.model.named_modules() if type(m).__name__ == "Linear"]
    targets = [n for n in names if re.fullmatch(loaded.family.lora_target_modules, n)]
    assert len(targets) == 2 * 7  # 2 layers x (q, k, v, o, gate, up, down)
    assert not any("vision" in n or "visual" in n for n in targets)
    module_names = [n for n, _ in loaded.model.named_modules()]
    assert any(any(p in n for p in loaded.family.projector_modules) for n in module_names)


def test_text_only_prompts_work(loaded):
    answers = loaded.generate([None], ["is the liver normal?"], GenerationConfig(max_new_tokens=2))
    assert len(answers) == 1 and isinstance(answers[0], str)


def test_packed_training_rows_match_stacked_rows(loaded, vqa_rad_items, tmp_path):
    """Families that declare ``packs_prefix`` give the same training log-probs from packed rows (a text
    pair's image + prompt run once) as from stacked rows; the others never pack."""
    import torch

    from harness.curation.preferences import PreferencePair
    from harness.training.batch import Collator, PairDataset
    from harness.training.encoding import RowEncoder
    from harness.training.logps import can_pack, concatenated_forward, packed_forward

    assert can_pack(loaded.model, loaded.family) == loaded.family.packs_prefix
    if not loaded.family.packs_prefix:
        return
    pairs = []
    for i, (image, question, record) in enumerate(vqa_rad_items):
        image.save(tmp_path / f"{i}.png")
        pairs.append(PreferencePair(id=str(i), image=f"{i}.png", prompt=question, chosen=str(record["answer"]),
                                    rejected="there is a large mass", kind="text"))
    encoder = RowEncoder(loaded.processor, loaded.format_prompt, 512)
    dataset = PairDataset(pairs, tmp_path, encoder, with_rejected=True)
    batch = Collator(loaded.tokenizer.pad_token_id or 0)([dataset[i] for i in range(len(pairs))])
    assert batch.shared["rejected"].all()
    with torch.no_grad():
        stacked = concatenated_forward(loaded.model, batch)
        packed = packed_forward(loaded.model, batch)
    for group in ("chosen", "rejected"):
        torch.testing.assert_close(packed[group]["sum"], stacked[group]["sum"], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(packed[group]["tokens"], stacked[group]["tokens"])


def test_training_batches_images_split_into_different_tile_counts(tiny_checkpoint, tmp_path):
    """Idefics3 / SmolVLM split each image into as many tiles as its shape needs; a training batch pads the
    tiles with zeros (as the processor pads its own batches) and every row keeps its own log-probs."""
    import torch
    from PIL import Image

    from harness.curation.preferences import PreferencePair
    from harness.training.batch import Collator, PairDataset
    from harness.training.encoding import RowEncoder
    from harness.training.logps import concatenated_forward, packed_forward

    vlm = load_hf_model(tiny_checkpoint("idefics3"), device="cpu", dtype="fp32")
    vlm.processor.image_processor.do_image_splitting = True  # tiles of 56 px from images resized to 112 px
    vlm.processor.image_processor.size = {"longest_edge": 112}
    Image.new("RGB", (200, 60), (200, 10, 10)).save(tmp_path / "wide.png")
    Image.new("RGB", (60, 60), (10, 200, 10)).save(tmp_path / "square.png")
    pairs = [PreferencePair(id="w", image="wide.png", prompt="what is shown?", chosen="the liver", rejected="no"),
             PreferencePair(id="s", image="square.png", prompt="what is shown?", chosen="no", rejected="yes")]
    dataset = PairDataset(pairs, tmp_path, RowEncoder(vlm.processor, vlm.format_prompt, 512), with_rejected=True)
    items = [dataset[0], dataset[1]]
    tiles = [item["chosen"].images["pixel_values"].shape[1] for item in items]
    assert tiles[0] != tiles[1]  # the test needs rows with different tile counts
    collate = Collator(vlm.tokenizer.pad_token_id or 0)
    batch = collate(items)
    with torch.no_grad():
        together = concatenated_forward(vlm.model, batch)
        packed = packed_forward(vlm.model, batch)
        for i, item in enumerate(items):
            alone = concatenated_forward(vlm.model, collate([item]))
            for group in ("chosen", "rejected"):
                torch.testing.assert_close(together[group]["sum"][i], alone[group]["sum"][0], rtol=1e-4, atol=1e-4)
                torch.testing.assert_close(packed[group]["sum"][i], alone[group]["sum"][0], rtol=1e-4, atol=1e-4)


def test_every_family_trains_through_the_core(loaded, vqa_rad_items, tiny_checkpoint, tmp_path):
    """Two DPO steps on real VQA-RAD images for each family: at step 1 LoRA's B is zero, so the policy is
    the reference and every pair's loss is log 2 (the batch loss is mean(w) * log 2), which checks the
    family's encoding, forward and adapter-disabled reference; then the language model's adapters move."""
    import math

    from safetensors.torch import load_file

    from harness.curation.preferences import PreferencePair
    from harness.methods import get_method
    from harness.training import TrainConfig, train_preference

    pairs = []
    for i, (image, question, record) in enumerate(vqa_rad_items):
        image.save(tmp_path / f"{i}.png")
        pairs.append(PreferencePair(id=str(i), image=f"{i}.png", prompt=question, chosen=str(record["answer"]),
                                    rejected="there is a large mass", weight=0.5 + 0.25 * i, kind="text"))
    fresh = load_hf_model(tiny_checkpoint(loaded.build_name), device="cpu", dtype="fp32")  # peft wraps it
    config = TrainConfig(lr=1e-2, max_steps=2, batch_size=3, warmup_ratio=0.0, lora_r=4, lora_dropout=0.0,
                         max_length=512, merge_lora=False)
    result = train_preference(fresh, get_method("dpo")(), pairs, tmp_path, tmp_path / "run", config)
    weights = [p.weight for p in pairs]
    assert result.history[0]["loss"] == pytest.approx(sum(weights) / len(weights) * math.log(2), rel=1e-4)
    assert math.isfinite(result.history[1]["loss"])
    adapters = load_file(result.adapter_path / "adapter_model.safetensors")
    moved = [name for name, value in adapters.items() if "lora_B" in name and float(value.abs().max()) > 0]
    modules = [re.sub(r"^base_model\.model\.|\.lora_B\.weight$", "", name) for name in moved]
    assert modules and all(re.fullmatch(loaded.family.lora_target_modules, m) for m in modules), modules[:3]
