"""The built-in ``tiny`` model: a small LLaVA-architecture model for CPU demos and tests.

``build_tiny_model`` writes an untrained model folder (a tiny CLIP vision tower, a two-layer MLP projector
and a tiny Llama text model, as in LLaVA-1.5; Liu et al., 2024, "Improved Baselines with Visual
Instruction Tuning") with a byte-level BPE tokenizer trained locally on the synthetic suite's text and
common words of the real tasks' prompts (byte-level, so it can tokenize any text), and a ``LlavaProcessor``
with a LLaVA-1.5 style chat template (``USER: <image>\\n{prompt}\\nASSISTANT:``).

This module only builds untrained models. Training them (``ensure_tiny``, ``ensure_testbed``, the
registered ``tiny`` and ``testbed`` names) lives in :mod:`harness.experiments.builtin_models`, above both the models
and the training core.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.errors import HarnessError

log = logging.getLogger(__name__)

IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", IMAGE_TOKEN)

# LLaVA-1.5's conversation format, written as a chat template over content lists or plain strings.
# Newlines are emitted as expressions because transformers renders templates with trim_blocks.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ 'USER: ' }}{% elif message['role'] == 'assistant' %}"
    "{{ 'ASSISTANT: ' }}{% else %}{{ message['role'] | upper + ': ' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}{{ '<image>\n' }}{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ '</s>' }}{% else %}{{ '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

# Words of the real tasks' prompts and answers (VQA-RAD, SLAKE, IU-Xray, MIMIC-CXR) so that they become
# whole tokens too; anything else still tokenizes, byte by byte.
COMMON_WORDS = """
what where which who how many is are does do was there this that the a an of in on at to with and or not no
yes image images picture scan shown seen show shows visible present abnormal abnormality normal organ organs
chest x-ray xray radiograph ct mri ultrasound t1 t2 flair weighted contrast axial coronal sagittal plane view
pa ap lateral frontal brain head neck lung lungs heart liver kidney kidneys spleen bladder bowel colon stomach
abdomen pelvis spine rib ribs bone bones skull trachea aorta diaphragm mediastinum pleura pleural
left right upper lower middle both bilateral side lobe base apex apical posterior anterior
mass nodule lesion tumor cyst effusion pneumothorax consolidation pneumonia edema atelectasis cardiomegaly
fracture opacity opacities infiltrate fluid air gas calcification enlarged enlargement hernia emphysema
fibrosis thickening enlarged cardiomediastinal silhouette support device devices tube line catheter pacemaker
findings impression describe report answer short phrase size small medium large shape round density
acute cardiopulmonary process disease unremarkable clear stable limits within heart size clear lungs
"""

# Architecture and training defaults, tuned so that building + SFT fits the demo's budget on two CPU
# cores and the model still learns to read lesions off the image (see docs/tiny-model.md).


@dataclass
class TinyConfig:
    """The tiny model's architecture and its training on the synthetic suite."""

    image_size: int = field(default=32, metadata={"help": "side of the square image the vision tower sees"})
    patch_size: int = field(default=8, metadata={"help": "vision patch side (image tokens = (image/patch)^2)"})
    vision_hidden: int = field(default=64, metadata={"help": "vision tower width"})
    vision_layers: int = field(default=2, metadata={"help": "vision tower depth"})
    text_hidden: int = field(default=64, metadata={"help": "text model width"})
    text_layers: int = field(default=2, metadata={"help": "text model depth"})
    heads: int = field(default=4, metadata={"help": "attention heads (vision and text)"})
    vocab_size: int = field(default=768, metadata={"help": "BPE vocabulary size of the local tokenizer"})
    max_positions: int = field(default=512, metadata={"help": "text positions"})
    # training
    train_vqa: int = field(default=2000, metadata={"help": "synth_vqa sft-split items used for SFT"})
    train_report: int = field(default=400, metadata={"help": "synth_report sft-split items used for SFT"})
    mismatch_share: float = field(default=0.0, metadata={
        "help": "share of SFT records whose text (question + answer, or report) is another case's: "
                "image-text mismatch as in noisy web-scale data, which pulls answers toward the text prior"})
    lesion_share: float | None = field(default=None, metadata={
        "help": "share of cases with a lesion among the SFT cases (None: the suite's natural mix, about one "
                "third); a lesion-enriched mix teaches reading lesions in fewer steps"})
    epochs: float = field(default=6.0, metadata={"help": "SFT epochs (ignored when steps > 0)"})
    steps: int = field(default=0, metadata={"help": "SFT optimizer steps; 0 derives them from epochs"})
    prior_steps: int = field(default=0, metadata={
        "help": "steps of a second SFT stage on the natural mix whose reports carry the text prior (deny_share); "
                "0: no second stage"})
    deny_share: float = field(default=0.0, metadata={
        "help": "second stage: share of lesion films whose report is the normal report (a prior-skewed mix, as "
                "in templated or under-called report corpora); VQA records stay true"})
    deny_spread: float = field(default=0.0, metadata={
        "help": "second stage: how much more often small lesions are denied than large ones (a lesion case is "
                "denied with probability deny_share + deny_spread * (0.5 - its size rank))"})
    prior_lr: float = field(default=3e-4, metadata={"help": "second stage's peak learning rate"})
    lr: float = field(default=1e-3, metadata={"help": "SFT learning rate (full fine-tuning from scratch)"})
    batch_size: int = field(default=32, metadata={"help": "SFT batch size"})
    seed: int = field(default=0, metadata={"help": "seed of the weights, the tokenizer corpus and SFT"})

    def key(self) -> str:
        return ",".join(f"{k}={v}" for k, v in dataclasses.asdict(self).items())


def tokenizer_corpus(seed: int = 0, n_cases: int = 400) -> list[str]:
    """Text the tokenizer learns from: synthetic questions, answers, reports, prompts and common words."""
    from harness.tasks import base
    from harness.tasks.synth import KINDS, LEVELS, SIDES, generate_case

    texts = [base.CLOSED_PROMPT, base.OPEN_PROMPT, base.DEFAULT_REPORT_INSTRUCTION, COMMON_WORDS,
             " ".join(KINDS + SIDES + LEVELS), "USER: ASSISTANT:"]
    for index in range(n_cases):
        _, _, case = generate_case("sft", index, seed=seed, image_size=32)
        texts += [case.question, case.answer, case.report]
    return texts


def build_tokenizer(texts: list[str], vocab_size: int, *, special_tokens: tuple[str, ...] | list[str] = SPECIAL_TOKENS,
                    image_token: str | None = IMAGE_TOKEN, prepend_bos: bool = True):
    """A byte-level BPE tokenizer (any input text tokenizes) trained on ``texts``; by default the tiny
    model's: it prepends ``<s>`` and names ``<image>`` its image token. ``special_tokens`` must include
    ``<pad> <s> </s> <unk>`` (and ``image_token`` unless None)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    if prepend_bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
        )
    extra = {"extra_special_tokens": {"image_token": image_token}} if image_token else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        model_max_length=2048, **extra,
    )


def _image_processor(image_size: int):
    try:  # the PIL backend needs no torchvision; older transformers only have the one class
        from transformers.models.clip import CLIPImageProcessorPil as ImageProcessor
    except ImportError:  # pragma: no cover - depends on the transformers version
        from transformers import CLIPImageProcessor as ImageProcessor
    # grayscale films: mean/std 0.5 keep pixels in [-1, 1]
    return ImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    )


def build_tiny_model(out_dir: str | Path, *, seed: int = 0, config: TinyConfig | None = None) -> Path:
    """Save an untrained tiny LLaVA model, its tokenizer and processor to ``out_dir``; return the folder."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    config = config or TinyConfig(seed=seed)
    if config.image_size % config.patch_size:
        raise HarnessError(f"tiny model: image_size {config.image_size} is not a multiple of patch_size")
    out_dir = Path(out_dir)
    tokenizer = build_tokenizer(tokenizer_corpus(seed), config.vocab_size)
    processor = LlavaProcessor(
        image_processor=_image_processor(config.image_size),
        tokenizer=tokenizer,
        patch_size=config.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's class token, dropped by the "default" strategy
        chat_template=CHAT_TEMPLATE,
    )
    vision = CLIPVisionConfig(
        hidden_size=config.vision_hidden, intermediate_size=4 * config.vision_hidden,
        num_hidden_layers=config.vision_layers, num_attention_heads=config.heads,
        image_size=config.image_size, patch_size=config.patch_size, projection_dim=config.vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=config.text_hidden, intermediate_size=4 * config.text_hidden,
        num_hidden_layers=config.text_layers, num_attention_heads=config.heads,
        num_key_value_heads=config.heads, max_position_embeddings=config.max_positions,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    model_config = LlavaConfig(
        vision_config=vision, text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_select_strategy="default", vision_feature_layer=-1,
    )
    torch.manual_seed(config.seed)
    model = LlavaForConditionalGeneration(model_config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
