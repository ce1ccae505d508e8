"""A tiny LLaVA (CLIP vision + Llama text, tokenizer trained locally) for training tests.

Uses ``harness.models.tiny.build_tiny_model`` when it exists; otherwise builds the same kind of model here.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE = (
    "{% for m in messages %}{% if m['role']=='user' %}USER: {% for c in m['content'] %}"
    "{% if c['type']=='image' %}<image>\n{% elif c['type']=='text' %}{{ c['text'] }}{% endif %}{% endfor %}\n"
    "{% else %}ASSISTANT: {% for c in m['content'] %}{% if c['type']=='text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}</s>\n{% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
CORPUS = [
    "is there a lesion in the left lung? yes no the heart is normal. no pleural effusion.",
    "what organ is shown? chest liver brain kidney abdomen ct mri x-ray fracture mass",
    "describe the image. there is a large opacity in the right lower lobe consistent with pneumonia.",
] * 10


def build_tiny_llava(out_dir: Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<unk>", "<s>", "</s>", "<image>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", extra_special_tokens={"image_token": "<image>"})
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                         do_convert_rgb=True)
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=fast, patch_size=8,
                               vision_feature_select_strategy="default", chat_template=TEMPLATE,
                               num_additional_image_tokens=1)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=8)
    text = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                       pad_token_id=fast.pad_token_id, bos_token_id=fast.bos_token_id,
                       eos_token_id=fast.eos_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_id=fast.convert_tokens_to_ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-1,
                         projector_hidden_act="gelu")
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
