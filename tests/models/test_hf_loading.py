"""Loading options, LoRA adapters and bad input for ``load_hf_model``."""

from __future__ import annotations

import json
import shutil

import pytest

from harness.core.errors import HarnessError
from harness.models.hf import load_hf_model


def _one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def _last_logits(model, image, question):
    import torch

    inputs = model.processor_inputs([image], [model.format_prompt(question)], "left")
    with torch.inference_mode():
        return model.model(**inputs).logits[0, -1]


def test_lora_adapter_loads_and_matches_the_in_memory_peft_model(tiny_checkpoint, vqa_rad_items, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    base = load_hf_model(tiny_checkpoint("llava"), device="cpu", dtype="fp32")
    image, question, _ = vqa_rad_items[0]
    before = _last_logits(base, image, question)
    torch.manual_seed(1)
    # init_lora_weights=False: random B as well as A, so the adapter really changes the outputs
    peft_model = get_peft_model(base.model, LoraConfig(r=4, lora_alpha=8, init_lora_weights=False,
                                                       target_modules=base.family.lora_target_modules))
    peft_model.save_pretrained(tmp_path / "adapter")
    expected = _last_logits(base, image, question)  # base.model is now wrapped in place by peft

    loaded = load_hf_model(tiny_checkpoint("llava"), device="cpu", dtype="fp32", adapter=tmp_path / "adapter")
    got = _last_logits(loaded, image, question)
    assert torch.allclose(got, expected, atol=1e-6)
    assert not torch.allclose(got, before, atol=1e-4)
    assert loaded.describe()["adapter"] == str(tmp_path / "adapter")


def test_dtype_and_attention_options(tiny_checkpoint, vqa_rad_items):
    import torch

    model = load_hf_model(tiny_checkpoint("llava"), device="cpu", dtype="bf16", attn_implementation="eager")
    assert model.model.dtype == torch.bfloat16
    assert model.model.config._attn_implementation == "eager"
    image, question, _ = vqa_rad_items[0]
    assert isinstance(model.generate([image], [question])[0], str)


def test_missing_folder(tmp_path):
    with pytest.raises(HarnessError) as excinfo:
        load_hf_model(tmp_path / "nowhere")
    assert "not found" in _one_line_error(excinfo)


def test_folder_without_config(tmp_path):
    with pytest.raises(HarnessError) as excinfo:
        load_hf_model(tmp_path)
    assert "no config.json" in _one_line_error(excinfo)


def test_model_folder_without_a_processor(tiny_checkpoint, tmp_path):
    folder = tmp_path / "no_processor"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_checkpoint("llava") / name, folder / name)
    with pytest.raises(HarnessError) as excinfo:
        load_hf_model(folder)
    assert str(folder) in _one_line_error(excinfo) and "processor" in str(excinfo.value)


def test_folder_with_a_tokenizer_but_no_image_processor(tiny_checkpoint, tmp_path):
    folder = tmp_path / "tokenizer_only"
    shutil.copytree(tiny_checkpoint("llava"), folder)
    (folder / "processor_config.json").unlink(missing_ok=True)
    (folder / "preprocessor_config.json").unlink(missing_ok=True)
    with pytest.raises(HarnessError) as excinfo:
        load_hf_model(folder)
    assert "processor" in _one_line_error(excinfo)


def test_unknown_model_family(tiny_checkpoint, tmp_path):
    folder = tmp_path / "unknown_family"
    shutil.copytree(tiny_checkpoint("llava"), folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "llava_next"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(HarnessError) as excinfo:
        load_hf_model(folder)
    message = _one_line_error(excinfo)
    assert "'llava_next' is not supported" in message and "did you mean 'llava'" in message


def test_family_mismatch_and_bad_options(tiny_checkpoint, tmp_path):
    with pytest.raises(HarnessError) as excinfo:
        load_hf_model(tiny_checkpoint("llava"), family="qwen2_vl")
    assert "not 'qwen2_vl'" in _one_line_error(excinfo)
    with pytest.raises(HarnessError) as excinfo:
        load_hf_model(tiny_checkpoint("llava"), dtype="fp8")
    assert "unknown dtype 'fp8'" in _one_line_error(excinfo)
    with pytest.raises(HarnessError) as excinfo:
        load_hf_model(tiny_checkpoint("llava"), adapter=tmp_path / "no_adapter")
    assert "adapter" in _one_line_error(excinfo)


def test_unreachable_hub_id(monkeypatch):
    import huggingface_hub.constants

    # offline mode fails at once, as an unreachable hub does after its time-outs
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HarnessError) as excinfo:
        load_hf_model("no-such-org/no-such-model-xyz")
    assert "no-such-org/no-such-model-xyz" in _one_line_error(excinfo)
