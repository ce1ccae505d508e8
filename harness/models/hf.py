"""Hugging Face vision-language models through ``AutoModelForImageTextToText`` + ``AutoProcessor``.

The same code loads a hub id or a local folder; family specifics (LoRA targets, projector names) live in
``FAMILIES``. Prompts go through the processor's chat template, so every family sees its own format.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.models.base import GenerationConfig, VisionLanguageModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Family:
    """What differs between model families, as far as the harness cares."""

    name: str
    model_types: tuple[str, ...]
    # regex over module names: the language model's linear layers (LoRA default targets)
    lora_target_modules: str
    # module-name prefixes of the vision-language projector (trainable with its own learning rate)
    projector_modules: tuple[str, ...]


FAMILIES: dict[str, Family] = {
    "llava": Family(
        "llava",
        ("llava",),
        r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$",
        ("multi_modal_projector",),
    ),
}


def family_of(model_type: str) -> Family:
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    raise HarnessError(
        f"model type '{model_type}' is not supported (supported: "
        f"{', '.join(t for f in FAMILIES.values() for t in f.model_types)})"
    )


class HFVisionLanguageModel(VisionLanguageModel):
    """A loaded HF model + processor. ``model``, ``processor`` and ``family`` are used by training too."""

    def __init__(self, model, processor, *, name: str, path: str, family: Family):
        self.model = model
        self.processor = processor
        self.name = name
        self.path = path
        self.family = family

    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def format_prompt(self, prompt: str, with_image: bool = True) -> str:
        """The full prompt text (chat template, image placeholder, generation prompt) for one user turn."""
        content: list[dict[str, Any]] = [{"type": "image"}] if with_image else []
        content.append({"type": "text", "text": prompt})
        messages = [{"role": "user", "content": content}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def processor_inputs(self, images: Sequence[Any] | None, texts: Sequence[str], padding_side: str):
        """Tokenize texts (with images) into model inputs, padded on ``padding_side``."""
        tokenizer = self.tokenizer
        previous = tokenizer.padding_side
        tokenizer.padding_side = padding_side
        try:
            kwargs: dict[str, Any] = {"text": list(texts), "padding": True, "return_tensors": "pt"}
            if images is not None:
                kwargs["images"] = list(images)
            return self.processor(**kwargs)
        finally:
            tokenizer.padding_side = previous

    def generate(
        self,
        images: Sequence[Any | None],
        prompts: Sequence[str],
        config: GenerationConfig | None = None,
    ) -> list[str] | list[list[str]]:
        import torch

        config = config or GenerationConfig()
        with_image = any(image is not None for image in images)
        if with_image and any(image is None for image in images):
            raise HarnessError("a batch must give an image for every prompt or for none")
        texts = [self.format_prompt(p, with_image=with_image) for p in prompts]
        inputs = self.processor_inputs([i.convert("RGB") for i in images] if with_image else None, texts, "left")
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        kwargs: dict[str, Any] = {
            "max_new_tokens": config.max_new_tokens,
            "do_sample": config.do_sample,
            "num_return_sequences": config.num_return_sequences,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if config.do_sample:
            kwargs.update(temperature=config.temperature, top_p=config.top_p)
            if config.seed is not None:
                torch.manual_seed(config.seed)
        self.model.eval()
        with torch.inference_mode():
            output = self.model.generate(**inputs, **kwargs)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        decoded = [t.strip() for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
        n = config.num_return_sequences
        if n == 1:
            return decoded
        return [decoded[i * n:(i + 1) * n] for i in range(len(prompts))]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "family": self.family.name}


def load_hf_model(
    path: str | Path,
    *,
    dtype: str = "auto",
    device: str | None = None,
    attn_implementation: str | None = None,
    adapter: str | Path | None = None,
    name: str | None = None,
) -> HFVisionLanguageModel:
    """Load a model folder or hub id through the Auto classes; optionally apply a peft LoRA adapter."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    path = str(path)
    local = Path(path)
    if local.exists() and not (local / "config.json").exists():
        raise HarnessError(f"{path}: not a model folder (no config.json)")
    try:
        config = AutoConfig.from_pretrained(path)
    except OSError as exc:
        raise HarnessError(f"could not load a model config from '{path}': {str(exc).splitlines()[0]}") from None
    family = family_of(config.model_type)
    try:
        processor = AutoProcessor.from_pretrained(path)
    except (OSError, ValueError, TypeError) as exc:
        raise HarnessError(f"{path}: no usable processor ({str(exc).splitlines()[0]})") from None
    if not hasattr(processor, "image_processor"):
        raise HarnessError(f"{path}: the folder has a tokenizer but no image processor (preprocessor_config.json)")
    torch_dtype = {"auto": "auto", "bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
                   "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}[dtype]
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    model.eval()
    return HFVisionLanguageModel(model, processor, name=name or local.name or path, path=path, family=family)
