"""Tiny, randomly initialised checkpoints of every supported family, written to disk like a real one.

Each builder writes a folder (config, weights, tokenizer trained here, the family's processor with a
chat template) that ``load_hf_model`` then reads back, so the tests exercise the same loading path as a
hub checkpoint. Sizes are the smallest the architectures accept, to keep the tests fast on 2 CPU cores.
"""

from __future__ import annotations

from pathlib import Path

from harness.models.hf import build_processor

SPECIAL_TOKENS = [
    "<unk>", "<s>", "</s>", "<pad>", "<image>",
    "<fake_token_around_image>", "<global-img>", "<end_of_utterance>",
    *[f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)],
    "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>",
]

CORPUS = [
    "is there a fracture in the left femur? yes", "what organ is shown? the liver", "no", "yes",
    "is the heart enlarged? no", "where is the lesion? right upper lobe", "chest x-ray shows no effusion",
    "USER: ASSISTANT: User: Assistant: user assistant [INST] [/INST] answer the question",
]


def train_tokenizer(texts: list[str] | None = None, vocab_size: int = 320, specials: list[str] | None = None):
    """The tiny model's byte-level BPE (``harness.models.tiny.build_tokenizer``) trained on the given text, with
    every family's special tokens (or ``specials``); no BOS post-processor and no image token of its own:
    each family's processor adds its own."""
    from harness.models.tiny import build_tokenizer

    return build_tokenizer(texts or CORPUS, vocab_size, special_tokens=specials or SPECIAL_TOKENS, image_token=None,
                           prepend_bos=False)


LLAVA_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}USER: "
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    " {% else %}ASSISTANT: {% for c in m['content'] %}{{ c['text'] }}{% endfor %}</s>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
IDEFICS3_TEMPLATE = (
    "<|im_start|>{% for m in messages %}{{ m['role'] | capitalize }}:"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)
QWEN2_VL_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _text_kwargs(tokenizer) -> dict:
    return dict(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _save(model, processor, out: Path) -> Path:
    import torch

    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    model.to(torch.float32).save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_llava(out: Path, tokenizer) -> Path:
    """LLaVA-1.5 layout (also what ``harness convert llava-med`` writes): CLIP tower, MLP projector, Mistral/Llama LM."""
    import torch
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        MistralConfig,
    )

    torch.manual_seed(0)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=28, patch_size=14, projection_dim=32)
    config = LlavaConfig(vision_config=vision, text_config=MistralConfig(**_text_kwargs(tokenizer)),
                         image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_layer=-2, vision_feature_select_strategy="default")
    model = LlavaForConditionalGeneration(config)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=LLAVA_TEMPLATE)
    return _save(model, processor, out)


def _build_idefics_like(out: Path, tokenizer, smolvlm: bool) -> Path:
    import torch
    from transformers import LlamaConfig

    if smolvlm:
        from transformers import SmolVLMConfig as Config
        from transformers import SmolVLMForConditionalGeneration as Model
        from transformers import SmolVLMImageProcessorPil as ImageProcessor
        from transformers import SmolVLMProcessor as Processor
        from transformers.models.smolvlm.configuration_smolvlm import SmolVLMVisionConfig as VisionConfig
    else:
        from transformers import Idefics3Config as Config
        from transformers import Idefics3ForConditionalGeneration as Model
        from transformers import Idefics3ImageProcessorPil as ImageProcessor
        from transformers import Idefics3Processor as Processor
        from transformers.models.idefics3.configuration_idefics3 import Idefics3VisionConfig as VisionConfig

    torch.manual_seed(0)
    # 56 px / 14 px patches = 16 patches; pixel shuffle by 2 -> 4 image tokens
    vision = VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                          image_size=56, patch_size=14)
    config = Config(vision_config=vision, text_config=LlamaConfig(**_text_kwargs(tokenizer)), scale_factor=2,
                    image_token_id=tokenizer.convert_tokens_to_ids("<image>"), pad_token_id=tokenizer.pad_token_id)
    model = Model(config)
    image_processor = ImageProcessor(size={"longest_edge": 56}, max_image_size={"longest_edge": 56},
                                     do_image_splitting=False)
    processor = build_processor(Processor, image_processor=image_processor, tokenizer=tokenizer, image_seq_len=4,
                                chat_template=IDEFICS3_TEMPLATE)
    return _save(model, processor, out)


def build_idefics3(out: Path, tokenizer) -> Path:
    return _build_idefics_like(out, tokenizer, smolvlm=False)


def build_smolvlm(out: Path, tokenizer) -> Path:
    return _build_idefics_like(out, tokenizer, smolvlm=True)


def _build_qwen(out: Path, tokenizer, v25: bool) -> Path:
    import torch
    from transformers import Qwen2VLImageProcessorPil, Qwen2VLProcessor

    if v25:
        from transformers import Qwen2_5_VLConfig as Config
        from transformers import Qwen2_5_VLForConditionalGeneration as Model
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                      fullatt_block_indexes=[1], window_size=56)
    else:
        from transformers import Qwen2VLConfig as Config
        from transformers import Qwen2VLForConditionalGeneration as Model
        vision = dict(depth=2, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2)
    torch.manual_seed(0)
    text = _text_kwargs(tokenizer)
    # head_dim 8 -> 4 rotary frequencies split over (time, height, width)
    text["rope_parameters"] = {"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 10000.0}
    config = Config(vision_config=vision, text_config=text,
                    image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
                    video_token_id=tokenizer.convert_tokens_to_ids("<|video_pad|>"),
                    vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
                    vision_end_token_id=tokenizer.convert_tokens_to_ids("<|vision_end|>"))
    model = Model(config)
    # every image becomes 56x56 px: a 4x4 grid of 14 px patches, merged 2x2 -> 4 image tokens
    image_processor = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=56 * 56)
    processor = build_processor(Qwen2VLProcessor, image_processor=image_processor, tokenizer=tokenizer,
                                chat_template=QWEN2_VL_TEMPLATE)
    return _save(model, processor, out)


def build_qwen2_vl(out: Path, tokenizer) -> Path:
    return _build_qwen(out, tokenizer, v25=False)


def build_qwen2_5_vl(out: Path, tokenizer) -> Path:
    return _build_qwen(out, tokenizer, v25=True)


def build_paligemma(out: Path, tokenizer) -> Path:
    """PaliGemma: no chat template; the processor prefixes image tokens + BOS and adds the loc/seg tokens."""
    import torch
    from transformers import (
        GemmaConfig,
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
        SiglipImageProcessorPil,
        SiglipVisionConfig,
    )

    torch.manual_seed(0)
    image_processor = SiglipImageProcessorPil(size={"height": 28, "width": 28})
    image_processor.image_seq_length = 4  # (28 / 14) ** 2 patches, no CLS
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    tokenizer = processor.tokenizer
    text = _text_kwargs(tokenizer)
    text.update(head_dim=8)
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                image_size=28, patch_size=14, projection_dim=32)
    config = PaliGemmaConfig(vision_config=vision, text_config=GemmaConfig(**text), projection_dim=32,
                             hidden_size=32, vocab_size=len(tokenizer),
                             image_token_index=tokenizer.convert_tokens_to_ids("<image>"))
    model = PaliGemmaForConditionalGeneration(config)
    return _save(model, processor, out)


BUILDERS = {
    "llava": build_llava, "idefics3": build_idefics3, "smolvlm": build_smolvlm, "qwen2_vl": build_qwen2_vl,
    "qwen2_5_vl": build_qwen2_5_vl, "paligemma": build_paligemma,
}


def build(family: str, out: Path, tokenizer) -> Path:
    """Write a tiny ``family`` checkpoint to ``out`` (the tokenizer is copied: processors add tokens to it)."""
    import copy

    return BUILDERS[family](out, copy.deepcopy(tokenizer))
