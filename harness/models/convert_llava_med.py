"""Convert a checkpoint in the original LLaVA code layout (LLaVA-Med v1.5) to the transformers Llava layout.

LLaVA-Med v1.5 (Li et al., 2023, "LLaVA-Med: Training a Large Language-and-Vision Assistant for
Biomedicine in One Day") ships as ``LlavaMistralForCausalLM``: a Mistral LM whose ``model`` also holds
``mm_projector`` (``mlp2x_gelu``: Linear, GELU, Linear) and, sometimes, ``vision_tower`` (a CLIP vision
model loaded from ``mm_vision_tower``). At run time LLaVA takes CLIP's hidden states of layer
``mm_vision_select_layer``, drops the CLS position (``mm_vision_select_feature: patch``), projects them,
and splices them into the text embeddings where the prompt had ``<image>`` (token id -200, never embedded).

The transformers layout (``LlavaForConditionalGeneration``) does the same computation given
``vision_feature_layer``, ``vision_feature_select_strategy="default"`` and a real ``<image>`` token that
the processor repeats once per image feature; so the conversion renames weights, adds that token (one new
embedding row, set to the mean row as its value never reaches the LM) and writes a processor that pads
images to a square with the mean colour like LLaVA's ``image_aspect_ratio: pad``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError

log = logging.getLogger(__name__)

IMAGE_TOKEN = "<image>"
# LLaVA-Med v1.5's conversation template (conv_mistral_instruct, LLAMA_2 style with an empty system prompt):
# "<s>[INST] <image>\nquestion [/INST] answer</s>"
MISTRAL_INSTRUCT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] "
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% endif %}{% endfor %}"
    "{% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %} [/INST]"
    "{% else %} {% for c in m['content'] %}{{ c['text'] }}{% endfor %}</s>{% endif %}{% endfor %}"
)
# LLaVA-1.5's conv_vicuna_v1, for llava_llama checkpoints
VICUNA_TEMPLATE = (
    "{{ bos_token }}A chat between a curious human and an artificial intelligence assistant. The assistant gives "
    "helpful, detailed, and polite answers to the human's questions.{% for m in messages %}"
    "{% if m['role'] == 'user' %} USER: {% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% endif %}"
    "{% endfor %}{% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% else %} ASSISTANT: {% for c in m['content'] %}{{ c['text'] }}{% endfor %}</s>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %} ASSISTANT:{% endif %}"
)
_TOWER_PREFIX = "model.vision_tower.vision_tower."
_PROJECTOR = {"model.mm_projector.0.": "model.multi_modal_projector.linear_1.",
              "model.mm_projector.2.": "model.multi_modal_projector.linear_2."}


@dataclass
class ConvertOptions:
    """Options of ``harness convert llava-med``."""

    vision_tower: str | None = None  # local CLIP folder, when the checkpoint lacks the tower or its config
    dtype: str | None = None  # output dtype (fp16, bf16, fp32); default: the checkpoint's own
    overwrite: bool = False


# -- reading the original checkpoint ----------------------------------------------------------------
def read_original_config(src: Path) -> dict[str, Any]:
    from harness.core.io import read_json

    config = read_json(src / "config.json")
    model_type = config.get("model_type")
    if model_type not in ("llava_mistral", "llava_llama", "llava"):
        raise HarnessError(f"{src / 'config.json'}: model_type is '{model_type}', expected 'llava_mistral' "
                           "(a checkpoint in the original LLaVA code layout)")
    projector = config.get("mm_projector_type", "linear")
    if projector != "mlp2x_gelu":
        raise HarnessError(f"{src / 'config.json'}: mm_projector_type '{projector}' is not supported "
                           "(only 'mlp2x_gelu', as in LLaVA-1.5 and LLaVA-Med v1.5)")
    if config.get("mm_use_im_start_end"):
        raise HarnessError(f"{src / 'config.json'}: mm_use_im_start_end=true is not supported by the Llava layout")
    for key in ("mm_hidden_size", "hidden_size", "vocab_size"):
        if key not in config:
            raise HarnessError(f"{src / 'config.json'}: field '{key}' is missing")
    return config


def _weight_files(src: Path) -> list[Path]:
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = src / index_name
        if index.exists():
            from harness.core.io import read_json

            weight_map = read_json(index).get("weight_map")
            if not isinstance(weight_map, dict):
                raise HarnessError(f"{index}: no 'weight_map'")
            files = [src / name for name in sorted(set(weight_map.values()))]
            missing = [f.name for f in files if not f.exists()]
            if missing:
                raise HarnessError(f"{index}: shard(s) missing: {', '.join(missing)}")
            return files
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (src / name).exists():
            return [src / name]
    raise HarnessError(f"{src}: no weights (model.safetensors, pytorch_model.bin or a sharded index)")


def load_state_dict(files: list[Path]) -> dict[str, Any]:
    """All tensors from safetensors or .bin shards (``weights_only``: a .bin cannot run code)."""
    import torch
    from safetensors.torch import load_file

    state: dict[str, Any] = {}
    for path in files:
        try:
            part = load_file(str(path)) if path.suffix == ".safetensors" else \
                torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as exc:  # corrupt shard: any reader error becomes one line naming the file
            raise HarnessError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from None
        state.update(part)
    return state


def _tower_config_and_weights(config: dict, state: dict, vision_tower: str | None):
    """The CLIP vision config, the tower's weights (bare CLIP names) and the tower folder."""
    from transformers import CLIPVisionConfig

    # keys are normalised to the bare CLIP transformer names ("embeddings.*", "encoder.*", ...)
    tower_state = {k[len(_TOWER_PREFIX):].removeprefix("vision_model."): v
                   for k, v in state.items() if k.startswith(_TOWER_PREFIX)}
    folder = Path(vision_tower).expanduser() if vision_tower else None
    if folder is None:
        named = Path(str(config.get("mm_vision_tower", ""))).expanduser()
        folder = named if named.is_dir() else None
    if folder is None:
        raise HarnessError(
            f"the checkpoint names vision tower '{config.get('mm_vision_tower')}', which is not a local folder: "
            "pass --vision-tower PATH (a local CLIP folder with config.json)"
        )
    if not (folder / "config.json").exists():
        raise HarnessError(f"vision tower folder {folder} not found or has no config.json")
    vision_config = CLIPVisionConfig.from_pretrained(folder)
    if not tower_state:
        files = _weight_files(folder)
        for key, value in load_state_dict(files).items():
            # a CLIPModel folder also holds the text tower and projections, which LLaVA never uses
            if key.startswith(("text_model.", "text_projection", "visual_projection", "logit_scale")):
                continue
            tower_state[key.removeprefix("vision_model.")] = value
        if "embeddings.patch_embedding.weight" not in tower_state:
            raise HarnessError(f"vision tower folder {folder}: no CLIP vision weights (embeddings.patch_embedding)")
    if vision_config.hidden_size != config["mm_hidden_size"]:
        raise HarnessError(f"vision tower {folder}: hidden size {vision_config.hidden_size} does not match the "
                           f"checkpoint's mm_hidden_size {config['mm_hidden_size']}")
    return vision_config, tower_state, folder


def _text_config(config: dict):
    """The Mistral (or Llama) text config: the original config minus LLaVA's ``mm_*`` additions."""
    from transformers import LlamaConfig, MistralConfig

    cls = LlamaConfig if config["model_type"] == "llava_llama" else MistralConfig
    text = {k: v for k, v in config.items()
            if not k.startswith(("mm_", "tune_mm", "freeze_mm", "unfreeze_mm"))
            and k not in ("model_type", "architectures", "image_aspect_ratio", "image_grid_pinpoints",
                          "use_mm_proj", "tokenizer_model_max_length", "tokenizer_padding_side", "_name_or_path",
                          "transformers_version", "torch_dtype", "dtype")}
    return cls(**text)


# -- weights ---------------------------------------------------------------------------------------
def map_weights(state: dict, tower_state: dict, target_keys: set[str]) -> dict[str, Any]:
    """Original names -> ``LlavaForConditionalGeneration`` names (as they appear in its state_dict)."""
    mapped: dict[str, Any] = {}
    for key, value in state.items():
        if key.startswith(_TOWER_PREFIX) or key.endswith("rotary_emb.inv_freq"):
            continue  # the tower comes from tower_state; inv_freq is recomputed
        for old, new in _PROJECTOR.items():
            if key.startswith(old):
                mapped[new + key[len(old):]] = value
                break
        else:
            if key == "lm_head.weight":
                mapped[key] = value
            elif key.startswith("model."):
                mapped["model.language_model." + key[len("model."):]] = value
            else:
                raise HarnessError(f"unexpected weight '{key}' in the original checkpoint")
    for key, value in tower_state.items():
        # CLIPVisionModel keeps `vision_model.`; the Llava model may hold the transformer directly
        for candidate in ("model.vision_tower." + key, "model.vision_tower.vision_model." + key):
            if candidate in target_keys:
                mapped[candidate] = value
                break
        else:
            log.debug("vision tower weight %s has no place in the Llava model", key)
    missing = sorted(target_keys - set(mapped))
    unexpected = sorted(set(mapped) - target_keys)
    if unexpected:
        raise HarnessError(f"weights with no place in the Llava layout: {', '.join(unexpected[:5])}")
    # CLIP's post_layernorm is unused by LLaVA (it reads hidden states, not the pooled output); keep CLIP's
    # if the tower gave one, otherwise identity
    missing = [k for k in missing if "post_layernorm" not in k]
    if missing:
        raise HarnessError(f"the checkpoint lacks weights the Llava layout needs: {', '.join(missing[:5])}"
                           f"{' ...' if len(missing) > 5 else ''}")
    return mapped


def _add_image_token_rows(mapped: dict, vocab_size: int) -> None:
    """Grow the embedding and LM-head matrices to ``vocab_size`` rows, new rows = mean of the old ones."""
    import torch

    for key in ("model.language_model.embed_tokens.weight", "lm_head.weight"):
        weight = mapped.get(key)
        if weight is None or weight.shape[0] >= vocab_size:
            continue
        extra = weight.float().mean(dim=0, keepdim=True).to(weight.dtype).expand(vocab_size - weight.shape[0], -1)
        mapped[key] = torch.cat([weight, extra], dim=0)


# -- tokenizer and processor -------------------------------------------------------------------------
def _tokenizer(src: Path):
    from transformers import AddedToken, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(src)
    except (OSError, ValueError, ImportError, TypeError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarnessError(f"{src}: cannot load the tokenizer ({text})") from None
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_tokens([AddedToken(IMAGE_TOKEN, special=True, normalized=False)], special_tokens=True)
    if tokenizer.pad_token is None:
        # LLaVA's v1 recipes train with pad = unk
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return tokenizer


def _image_processor(config: dict, tower_folder: Path | None, image_size: int):
    from transformers import LlavaImageProcessorPil

    settings: dict[str, Any] = {}
    source = tower_folder / "preprocessor_config.json" if tower_folder else None
    if source is not None and source.exists():
        known = ("size", "crop_size", "image_mean", "image_std", "resample", "do_center_crop", "do_resize")
        saved = json.loads(source.read_text(encoding="utf-8"))
        settings = {k: v for k, v in saved.items() if k in known}
    settings.setdefault("size", {"shortest_edge": image_size})
    settings.setdefault("crop_size", {"height": image_size, "width": image_size})
    settings["do_pad"] = config.get("image_aspect_ratio") == "pad"
    return LlavaImageProcessorPil(**settings)


# -- the conversion ----------------------------------------------------------------------------------
def convert_llava_med(src: str | Path, dst: str | Path, options: ConvertOptions | None = None) -> Path:
    """Convert ``src`` (original LLaVA layout) into ``dst`` (transformers Llava layout); returns ``dst``."""
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    options = options or ConvertOptions()
    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if not src.is_dir():
        raise HarnessError(f"source checkpoint folder {src} not found")
    if dst.exists() and any(dst.iterdir()) and not options.overwrite:
        raise HarnessError(f"destination {dst} exists and is not empty (pass --overwrite to replace it)")
    config = read_original_config(src)
    state = load_state_dict(_weight_files(src))
    vision_config, tower_state, tower_folder = _tower_config_and_weights(config, state, options.vision_tower)
    tokenizer = _tokenizer(src)
    text_config = _text_config(config)
    text_config.vocab_size = max(len(tokenizer), config["vocab_size"])
    select = config.get("mm_vision_select_feature", "patch")
    if select not in ("patch", "cls_patch"):
        raise HarnessError(f"{src / 'config.json'}: mm_vision_select_feature '{select}' is not supported")
    llava_config = LlavaConfig(
        vision_config=vision_config.to_dict(),
        text_config=text_config.to_dict(),
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=config.get("mm_vision_select_layer", -2),
        vision_feature_select_strategy="default" if select == "patch" else "full",
        projector_hidden_act="gelu",
        multimodal_projector_bias=True,
    )
    llava_config.text_config.model_type = text_config.model_type
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(llava_config)
    target_keys = set(model.state_dict())
    mapped = map_weights(state, tower_state, target_keys)
    _add_image_token_rows(mapped, text_config.vocab_size)
    dtype = _out_dtype(options.dtype, config, mapped)
    mapped = {k: v.to(dtype) for k, v in mapped.items()}
    for key in target_keys - set(mapped):  # post_layernorm (unused by LLaVA): identity
        shape = model.state_dict()[key].shape
        mapped[key] = torch.ones(shape, dtype=dtype) if key.endswith("weight") else torch.zeros(shape, dtype=dtype)
    model.load_state_dict(mapped, strict=True, assign=True)
    if getattr(text_config, "tie_word_embeddings", False):
        model.tie_weights()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    processor = LlavaProcessor(
        image_processor=_image_processor(config, tower_folder, vision_config.image_size), tokenizer=tokenizer,
        patch_size=vision_config.patch_size, vision_feature_select_strategy=llava_config.vision_feature_select_strategy,
        num_additional_image_tokens=1,
        chat_template=MISTRAL_INSTRUCT_TEMPLATE if config["model_type"] == "llava_mistral" else VICUNA_TEMPLATE,
    )
    dst.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dst)
    processor.save_pretrained(dst)
    log.info("converted %s -> %s (%d weights, image token id %d)", src, dst, len(mapped), llava_config.image_token_id)
    return dst


def _out_dtype(requested: str | None, config: dict, mapped: dict):
    import torch

    table = {"fp16": torch.float16, "float16": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
             "fp32": torch.float32, "float32": torch.float32}
    if requested is not None:
        if requested not in table:
            raise HarnessError(f"unknown dtype '{requested}' (choose from {', '.join(table)})")
        return table[requested]
    saved = config.get("torch_dtype") or config.get("dtype")
    return table.get(saved, next(iter(mapped.values())).dtype)
