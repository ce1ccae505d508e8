"""``harness convert llava-med``: a tiny checkpoint written in the original LLaVA code layout converts to the
transformers Llava layout, and the converted model's logits equal a reference computation of the original
architecture (LLaVA's ``llava_arch.py`` + ``multimodal_projector/builder.py``, re-derived here by hand)."""

from __future__ import annotations

import json

import pytest
from families import CORPUS, train_tokenizer

from harness.core.errors import HarnessError
from harness.models.convert_llava_med import ConvertOptions, convert_llava_med
from harness.models.hf import load_hf_model

SELECT_LAYER = -2


def _write_original(folder, tower_dir, *, fmt: str, include_tower: bool):
    """A LlavaMistralForCausalLM checkpoint as LLaVA-Med v1.5 ships it, at toy size, in two shards."""
    import torch
    from safetensors.torch import save_file
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        CLIPVisionModel,
        MistralConfig,
        MistralForCausalLM,
    )

    folder.mkdir(parents=True)
    tokenizer = train_tokenizer(CORPUS, specials=["<unk>", "<s>", "</s>"])  # no <image>, no pad: like Mistral's
    torch.manual_seed(0)
    text = MistralConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    lm = MistralForCausalLM(text)
    tower = CLIPVisionModel(CLIPVisionConfig(hidden_size=24, intermediate_size=48, num_hidden_layers=3,
                                             num_attention_heads=2, image_size=28, patch_size=14))
    if not tower_dir.exists():
        tower.save_pretrained(tower_dir)
        CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}).save_pretrained(
            tower_dir)
    else:
        tower = CLIPVisionModel.from_pretrained(tower_dir)
    state = {k: v.clone() for k, v in lm.state_dict().items()}
    state["model.mm_projector.0.weight"] = torch.randn(32, 24) * 0.2
    state["model.mm_projector.0.bias"] = torch.randn(32) * 0.2
    state["model.mm_projector.2.weight"] = torch.randn(32, 32) * 0.2
    state["model.mm_projector.2.bias"] = torch.randn(32) * 0.2
    if include_tower:  # the transformers-4 CLIPVisionModel names that LLaVA checkpoints carry
        state.update({f"model.vision_tower.vision_tower.vision_model.{k}": v.clone()
                      for k, v in tower.state_dict().items()})
    keys = sorted(state)
    shards = {f"model-0000{i + 1}-of-00002.{fmt}": keys[i::2] for i in range(2)}
    for name, names in shards.items():
        part = {k: state[k].contiguous() for k in names}
        save_file(part, folder / name) if fmt == "safetensors" else torch.save(part, folder / name)
    index = "model.safetensors.index.json" if fmt == "safetensors" else "pytorch_model.bin.index.json"
    (folder / index).write_text(json.dumps({"metadata": {}, "weight_map": {k: n for n, ks in shards.items()
                                                                           for k in ks}}))
    config = {**text.to_dict(), "model_type": "llava_mistral", "architectures": ["LlavaMistralForCausalLM"],
              "mm_projector_type": "mlp2x_gelu", "mm_vision_tower": "openai/clip-vit-large-patch14-336",
              "mm_hidden_size": 24, "mm_vision_select_layer": SELECT_LAYER, "mm_vision_select_feature": "patch",
              "image_aspect_ratio": "pad", "mm_use_im_start_end": False, "mm_use_im_patch_token": False,
              "torch_dtype": "float32"}
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer.save_pretrained(folder)
    return state, tower, text


def _expand2square(image, background):
    """LLaVA's ``expand2square``: paste the image centred on a square of the mean colour."""
    from PIL import Image

    width, height = image.size
    side = max(width, height)
    canvas = Image.new(image.mode, (side, side), background)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def _reference_logits(state, tower, text_config, tower_dir, image, ids_before, ids_after):
    """The original forward: CLIP layer features minus CLS -> mlp2x_gelu -> spliced into Mistral's embeddings."""
    import torch
    import torch.nn.functional as F
    from transformers import CLIPImageProcessorPil, MistralForCausalLM

    processor = CLIPImageProcessorPil.from_pretrained(tower_dir)
    background = tuple(int(x * 255) for x in processor.image_mean)
    pixels = processor(_expand2square(image, background), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        hidden = tower(pixels, output_hidden_states=True).hidden_states[SELECT_LAYER][:, 1:]
        features = F.linear(F.gelu(F.linear(hidden, state["model.mm_projector.0.weight"],
                                            state["model.mm_projector.0.bias"])),
                            state["model.mm_projector.2.weight"], state["model.mm_projector.2.bias"])
        lm = MistralForCausalLM(text_config)
        lm.load_state_dict({k: v for k, v in state.items() if "mm_projector" not in k and "vision_tower" not in k})
        embed = lm.get_input_embeddings()
        embeds = torch.cat([embed(ids_before), features[0], embed(ids_after)])[None]
        return lm(inputs_embeds=embeds).logits[0], pixels


@pytest.mark.parametrize("fmt, include_tower", [("safetensors", True), ("bin", False)])
def test_converted_logits_equal_the_original_architecture(tmp_path, vqa_rad_items, fmt, include_tower):
    import torch

    src, tower_dir, dst = tmp_path / "llava-med", tmp_path / "clip", tmp_path / "converted"
    state, tower, text_config = _write_original(src, tower_dir, fmt=fmt, include_tower=include_tower)
    convert_llava_med(src, dst, ConvertOptions(vision_tower=str(tower_dir)))

    model = load_hf_model(dst, device="cpu", dtype="fp32")
    assert model.family.name == "llava"
    image, question, _ = vqa_rad_items[0]
    prompt = model.format_prompt(question)
    assert prompt == f"<s>[INST] <image>\n{question} [/INST]"
    inputs = model.processor_inputs([image], [prompt], "left")
    ids = inputs["input_ids"][0]
    image_positions = (ids == model.model.config.image_token_id).nonzero().flatten()
    assert len(image_positions) == 4  # (28 / 14) ** 2 patches, CLS dropped
    assert int((ids == model.tokenizer.bos_token_id).sum()) == 1
    expected, pixels = _reference_logits(state, tower, text_config, tower_dir, image,
                                         ids[:image_positions[0]], ids[image_positions[-1] + 1:])
    assert torch.allclose(inputs["pixel_values"], pixels, atol=1e-5)  # pad-to-square preprocessing kept
    with torch.no_grad():
        got = model.model(**inputs).logits[0]
    vocab = state["lm_head.weight"].shape[0]
    assert got.shape[0] == expected.shape[0]
    assert torch.allclose(got[:, :vocab], expected, atol=1e-5), (got[:, :vocab] - expected).abs().max()
    # and the converted model answers real questions through the ordinary adapter
    answers = model.generate([i for i, _, _ in vqa_rad_items[:2]], [q for _, q, _ in vqa_rad_items[:2]],
                             __import__("harness.models.base", fromlist=["GenerationConfig"]).GenerationConfig(
                                 max_new_tokens=2))
    assert len(answers) == 2


def test_bad_sources_give_one_line_errors(tmp_path):
    with pytest.raises(HarnessError, match="not found"):
        convert_llava_med(tmp_path / "missing", tmp_path / "out")
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"model_type": "llava_mistral", "mm_projector_type": "linear"}))
    with pytest.raises(HarnessError, match="mm_projector_type 'linear' is not supported"):
        convert_llava_med(src, tmp_path / "out")
    (src / "config.json").write_text(json.dumps({"model_type": "mistral"}))
    with pytest.raises(HarnessError, match="expected 'llava_mistral'"):
        convert_llava_med(src, tmp_path / "out")


def test_missing_vision_tower_is_explained(tmp_path):
    src, tower_dir = tmp_path / "src", tmp_path / "clip"
    _write_original(src, tower_dir, fmt="safetensors", include_tower=True)
    with pytest.raises(HarnessError) as excinfo:
        convert_llava_med(src, tmp_path / "out")
    assert "--vision-tower" in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_cli_converts_and_reports_errors_on_one_line(tmp_path, capsys):
    from harness.cli import main

    src, tower_dir, dst = tmp_path / "src", tmp_path / "clip", tmp_path / "dst"
    _write_original(src, tower_dir, fmt="bin", include_tower=True)
    assert main(["convert", "llava-med", str(src), str(dst), "--vision-tower", str(tower_dir)]) == 0
    assert (dst / "config.json").exists() and (dst / "processor_config.json").exists()
    assert json.loads((dst / "config.json").read_text())["model_type"] == "llava"
    capsys.readouterr()
    # converting again into the same folder needs --overwrite
    assert main(["convert", "llava-med", str(src), str(dst), "--vision-tower", str(tower_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--overwrite" in err and "\n" not in err
