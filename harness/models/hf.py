"""Hugging Face vision-language models through ``AutoModelForImageTextToText`` + ``AutoProcessor``.

The same code loads a hub id or a local folder; family specifics (LoRA targets, projector names, prompt
style) live in ``FAMILIES``. Prompts go through the processor's chat template, so every family sees its
own format; PaliGemma, which has no chat template, gets the bare prompt and its processor adds the image
tokens and BOS in front (the "prefix" it was trained with).
"""

from __future__ import annotations

import difflib
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.models.base import GenerationConfig, VisionLanguageModel, check_generate_args

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
    # "chat": the processor's chat template; "prefix": bare text, the processor prepends image tokens
    prompt_style: str = "chat"
    # training may pack a pair's rows that share an image + prompt prefix into one row with a custom 4-D
    # attention mask (``harness.training.logps.packed_forward``): needs plain 1-D positions and image
    # tensors with one entry per row along dim 0. Not Qwen2-VL (3-D M-RoPE positions, flattened patches)
    # nor PaliGemma (its prefix-LM mask comes from token types).
    packs_prefix: bool = False


_LM_LINEARS = r"\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$"

FAMILIES: dict[str, Family] = {
    # LLaVA-1.5, and LLaVA-Med v1.5 after `harness convert llava-med`: CLIP tower, 2-layer MLP projector
    "llava": Family("llava", ("llava",), r".*language_model.*" + _LM_LINEARS, ("multi_modal_projector",),
                    packs_prefix=True),
    # Idefics3 and SmolVLM (v1 checkpoints declare "idefics3", SmolVLM2 "smolvlm"): SigLIP tower,
    # pixel-shuffle connector, Llama text model under `text_model`
    "idefics3": Family(
        "idefics3", ("idefics3", "smolvlm"), r".*text_model.*" + _LM_LINEARS, ("connector",), packs_prefix=True,
    ),
    # Qwen2-VL / Qwen2.5-VL: the vision tower's patch merger plays the projector's role
    "qwen2_vl": Family(
        "qwen2_vl", ("qwen2_vl", "qwen2_5_vl"), r".*language_model.*" + _LM_LINEARS, ("visual.merger",),
    ),
    # PaliGemma: SigLIP tower, one linear projector, Gemma LM; no chat template
    "paligemma": Family(
        "paligemma", ("paligemma",), r".*language_model.*" + _LM_LINEARS, ("multi_modal_projector",),
        prompt_style="prefix",
    ),
}

DTYPES = ("auto", "bf16", "bfloat16", "fp16", "float16", "fp32", "float32")


def family_of(model_type: str) -> Family:
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    known = [t for f in FAMILIES.values() for t in f.model_types]
    close = difflib.get_close_matches(model_type, known, n=2, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise HarnessError(f"model type '{model_type}' is not supported{hint} (supported: {', '.join(known)})")


class HFVisionLanguageModel(VisionLanguageModel):
    """A loaded HF model + processor. ``model``, ``processor`` and ``family`` are used by training too."""

    def __init__(self, model, processor, *, name: str, path: str, family: Family, adapter: str | None = None):
        self.model = model
        self.processor = processor
        self.name = name
        self.path = path
        self.family = family
        self.adapter = adapter

    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def format_prompt(self, prompt: str, with_image: bool = True) -> str:
        """The full prompt text (chat template, image placeholder, generation prompt) for one user turn."""
        if self.family.prompt_style == "prefix" or not getattr(self.processor, "chat_template", None):
            # PaliGemma's processor expands "<image>" to the image tokens and adds BOS after them and "\n"
            # after the text; without an image only the tokenizer runs, so write BOS and "\n" here
            if with_image:
                return f"{getattr(self.processor, 'image_token', '<image>')}{prompt}"
            return f"{self.tokenizer.bos_token or ''}{prompt}\n"
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
            if images is None and self.family.prompt_style == "prefix":
                # PaliGemma's processor refuses text without images; the prompt already holds BOS
                return tokenizer(list(texts), padding=True, return_tensors="pt", add_special_tokens=False)
            if images is not None:
                # one image per prompt; nested lists are what multi-image processors (Idefics3) expect
                kwargs["images"] = [[image] for image in images] if self.family.name == "idefics3" else list(images)
            bos = tokenizer.bos_token
            if bos and texts and all(t.startswith(bos) for t in texts):
                # the chat template already wrote BOS (Mistral-style templates): do not add a second one
                kwargs["add_special_tokens"] = False
            inputs = self.processor(**kwargs)
            # PaliGemma's processor adds all-ignored labels when no suffix is given; callers build their own
            inputs.pop("labels", None)
            return inputs
        finally:
            tokenizer.padding_side = previous

    def generate(
        self,
        images: Sequence[Any | None],
        prompts: Sequence[str],
        config: GenerationConfig | None = None,
    ) -> list[str] | list[list[str]]:
        import torch

        from harness.core.images import to_rgb

        config = check_generate_args(images, prompts, config)
        with_image = any(image is not None for image in images)
        if with_image and any(image is None for image in images):
            raise HarnessError("a batch must give an image for every prompt or for none")
        texts = [self.format_prompt(p, with_image=with_image) for p in prompts]
        inputs = self.processor_inputs([to_rgb(i) for i in images] if with_image else None, texts, "left")
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
        else:
            # greedy: drop sampling defaults some checkpoints ship in generation_config.json
            kwargs.update(temperature=None, top_p=None, top_k=None)
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
        info = {"name": self.name, "path": self.path, "family": self.family.name}
        if self.adapter:
            info["adapter"] = self.adapter
        info["fingerprint"] = self.fingerprint()
        return info

    def fingerprint(self) -> str:
        """The content identity of the weights this model answers with (``harness.models.fingerprint``): the
        folder's files, plus the adapter's; the loaded parameters when there is no local folder."""
        cached = getattr(self, "_fingerprint", None)
        if cached is None:
            from harness.models.fingerprint import model_fingerprint, module_fingerprint

            folders = [_local_folder(str(p)) for p in (self.path, self.adapter) if p]
            if all(folders):
                parts = [model_fingerprint(folder) for folder in folders]
                cached = parts[0] if len(parts) == 1 else hashlib.sha256("+".join(parts).encode()).hexdigest()[:16]
            else:  # a hub id: hash what was loaded
                cached = module_fingerprint(self.model)
            self._fingerprint = cached
        return cached


def _local_folder(path: str) -> Path | None:
    """``path`` as a local folder: itself, or a hub id's snapshot in the local hub cache; None otherwise."""
    if Path(path).is_dir():
        return Path(path)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(path, local_files_only=True))
    except Exception:  # noqa: BLE001 - not a cached hub id: the caller hashes the loaded weights instead
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _looks_local(path: str) -> bool:
    return path.startswith(("/", ".", "~")) or Path(path).exists() or path.count("/") != 1


def _image_only(processor_cls):
    """``processor_cls`` without its video processor, which transformers cannot build without torchvision.

    Qwen2-VL and SmolVLM processors declare a video processor; images never need it, and ``__call__``
    only touches it when videos are passed. The subclass keeps the parent's name so saved configs still
    name the real class.
    """

    class ImageOnly(processor_cls):
        @classmethod
        def get_attributes(cls):
            return [a for a in super().get_attributes() if a != "video_processor"]

    ImageOnly.__name__ = ImageOnly.__qualname__ = processor_cls.__name__
    return ImageOnly


def build_processor(processor_cls, *, image_processor, tokenizer, **kwargs):
    """Construct ``processor_cls``, leaving out the video processor where it declares one."""
    import inspect

    if "video_processor" in inspect.signature(processor_cls.__init__).parameters:
        return _image_only(processor_cls)(image_processor=image_processor, tokenizer=tokenizer, **kwargs)
    return processor_cls(image_processor=image_processor, tokenizer=tokenizer, **kwargs)


def load_processor(path: str):
    """``AutoProcessor``; where that fails only for want of torchvision (a video processor), an image-only one."""
    import json

    from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer

    try:
        return AutoProcessor.from_pretrained(path)
    except (ImportError, OSError, ValueError, TypeError, KeyError) as exc:
        message = str(exc).lower()
        if "torchvision" not in message and "video processor" not in message:
            problem = "needs a missing package" if isinstance(exc, ImportError) else "has no usable processor"
            raise HarnessError(f"{path}: {problem} ({_first_line(exc)})") from None
    config_file = Path(path) / "processor_config.json"
    try:
        settings = json.loads(config_file.read_text(encoding="utf-8"))
        import transformers

        processor_cls = getattr(transformers, settings.pop("processor_class"))
        settings = {k: v for k, v in settings.items() if not isinstance(v, dict)}
        chat_template = Path(path) / "chat_template.jinja"
        if chat_template.exists():
            settings.setdefault("chat_template", chat_template.read_text(encoding="utf-8"))
        return build_processor(
            processor_cls,
            image_processor=AutoImageProcessor.from_pretrained(path),
            tokenizer=AutoTokenizer.from_pretrained(path),
            **settings,
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError, ImportError) as exc:
        raise HarnessError(f"{path}: no usable processor ({_first_line(exc)})") from None


def _torch_dtype(dtype: str):
    import torch

    table = {"auto": "auto", "bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
             "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}
    if dtype not in table:
        raise HarnessError(f"unknown dtype '{dtype}' (choose from {', '.join(DTYPES)})")
    return table[dtype]


def _load_adapter(model, adapter: str | Path):
    from peft import PeftModel

    folder = Path(adapter).expanduser()
    if not (folder / "adapter_config.json").exists():
        where = "not found" if not folder.exists() else "has no adapter_config.json"
        raise HarnessError(f"LoRA adapter folder {adapter} {where}")
    return PeftModel.from_pretrained(model, str(folder))


def load_hf_model(
    path: str | Path,
    *,
    dtype: str = "auto",
    device: str | None = None,
    attn_implementation: str | None = None,
    adapter: str | Path | None = None,
    name: str | None = None,
    family: str | None = None,
) -> HFVisionLanguageModel:
    """Load a model folder or hub id through the Auto classes; optionally apply a peft LoRA adapter.

    ``dtype``: auto (as saved), bf16, fp16 or fp32. ``device``: cuda when available, else cpu.
    ``attn_implementation``: eager, sdpa or flash_attention_2. ``family``: check the folder holds this family.
    """
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    path = str(path)
    local = Path(path).expanduser()
    if _looks_local(path) and not local.exists():
        raise HarnessError(f"model folder {path} not found")
    if local.exists():
        if not local.is_dir() or not (local / "config.json").exists():
            raise HarnessError(f"{path}: not a model folder (no config.json)")
        path = str(local)
    torch_dtype = _torch_dtype(dtype)
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError, KeyError) as exc:
        raise HarnessError(f"could not load a model config from '{path}': {_first_line(exc)}") from None
    found = family_of(config.model_type)
    if family is not None and family != found.name:
        raise HarnessError(f"{path}: the folder holds a '{found.name}' model, not '{family}'")
    processor = load_processor(path)
    if not hasattr(processor, "image_processor"):
        raise HarnessError(f"{path}: the folder has a tokenizer but no image processor (preprocessor_config.json)")
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{path}: could not load the weights ({_first_line(exc)})") from None
    if adapter is not None:
        model = _load_adapter(model, adapter)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    model.eval()
    log.info("loaded %s (%s, %s) on %s", path, found.name, model.dtype, device)
    return HFVisionLanguageModel(
        model, processor, name=name or local.name or path, path=path, family=found,
        adapter=str(adapter) if adapter is not None else None,
    )
