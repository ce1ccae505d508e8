"""Batched against one-at-a-time greedy generation on the tiny model: the same answers, more samples/s.

Run (compares the two side by side in one table)::

    OMP_NUM_THREADS=2 .venv/bin/pytest benchmarks/test_generation_speed.py --benchmark-only \
        --benchmark-group-by=group --benchmark-columns=mean,stddev,rounds

The model is the trained ``tiny`` when it is registered (it is trained and cached under ``HARNESS_HOME``
on first use), else the untrained tiny architecture. The prompts are the first 32 ``synth_vqa`` test
items through the task's own prompt template, answered with the engine's closed/open token budgets.
Each test records ``samples_per_second`` in ``extra_info``; ``test_batched_matches_one_at_a_time`` checks
that batching does not change a single answer.
"""

from __future__ import annotations

import tempfile

import pytest

from harness.evaluation import EvalConfig
from harness.models.base import GenerationConfig

N_SAMPLES = 32
BATCH_SIZE = 16


@pytest.fixture(scope="module")
def model():
    from harness.models import MODELS, load_model

    if "tiny" in MODELS:
        return load_model("tiny", device="cpu")
    from harness.models.hf import load_hf_model
    from harness.models.tiny import build_tiny_model

    return load_hf_model(build_tiny_model(tempfile.mkdtemp(prefix="tiny-bench-")), device="cpu", name="tiny-untrained")


@pytest.fixture(scope="module")
def workload():
    """(answer type, images, prompts) groups: the engine batches within one answer type."""
    from harness.tasks import get_task

    task = get_task("synth_vqa")
    rows = task.load("test").select(range(N_SAMPLES))
    groups = {}
    for row in rows:
        kind = row["answer_type"]
        images, prompts = groups.setdefault(kind, ([], []))
        images.append(row["image"])
        prompts.append(task.prompt(row))
    return [(kind, *groups[kind]) for kind in sorted(groups)]


def _batched(model, workload):
    answers = []
    for kind, images, prompts in workload:
        config = GenerationConfig(max_new_tokens=EvalConfig().max_new_tokens(kind))
        for start in range(0, len(prompts), BATCH_SIZE):
            answers += model.generate(images[start:start + BATCH_SIZE], prompts[start:start + BATCH_SIZE], config)
    return answers


def _one_at_a_time(model, workload):
    answers = []
    for kind, images, prompts in workload:
        config = GenerationConfig(max_new_tokens=EvalConfig().max_new_tokens(kind))
        answers += [model.generate([image], [prompt], config)[0] for image, prompt in zip(images, prompts)]
    return answers


def test_batched_matches_one_at_a_time(model, workload):
    assert _batched(model, workload) == _one_at_a_time(model, workload)


@pytest.mark.benchmark(group="generation")
def test_generation_batched(benchmark, model, workload, speed_guard):
    timed = speed_guard.path("generation.batched", _batched, faster_than=["generation.one_at_a_time"])
    answers = benchmark.pedantic(timed, args=(model, workload), rounds=5, warmup_rounds=1)
    assert answers == _one_at_a_time(model, workload)
    benchmark.extra_info.update(model=model.name, batch_size=BATCH_SIZE,
                                samples_per_second=N_SAMPLES / benchmark.stats.stats.mean)


@pytest.mark.benchmark(group="generation")
def test_generation_one_at_a_time(benchmark, model, workload, speed_guard):
    timed = speed_guard.path("generation.one_at_a_time", _one_at_a_time)
    answers = benchmark.pedantic(timed, args=(model, workload), rounds=5, warmup_rounds=1)
    assert answers == _batched(model, workload)
    benchmark.extra_info.update(model=model.name, batch_size=1,
                                samples_per_second=N_SAMPLES / benchmark.stats.stats.mean)


# --- the same comparison at LLaVA-1.5-7B size on a GPU (random weights: throughput needs no training) ---

GPU_SAMPLES = 32
gpu = pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def llava7b():
    """A random LLaVA-1.5-7B-sized model (CLIP ViT-L/14-336 + Llama-2-7B shapes) in bf16 on the GPU.

    The tokenizer is a word-level vocabulary of the model's 32,064 ids, so any generated id decodes.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    from harness.models.hf import FAMILIES, HFVisionLanguageModel

    specials = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
    vocab = {tok: i for i, tok in enumerate(specials + [f"w{i}" for i in range(32064 - len(specials))])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", extra_special_tokens={"image_token": "<image>"})
    template = ("{% for m in messages %}USER: {% for c in m['content'] %}{% if c['type']=='image' %}<image> "
                "{% else %}{{ c['text'] }}{% endif %}{% endfor %} {% endfor %}"
                "{% if add_generation_prompt %}ASSISTANT:{% endif %}")
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}),
        tokenizer=fast, patch_size=14, vision_feature_select_strategy="default", chat_template=template,
        num_additional_image_tokens=1)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                       num_attention_heads=16, image_size=336, patch_size=14, projection_dim=768),
        text_config=LlamaConfig(vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                                pad_token_id=3, bos_token_id=1, eos_token_id=2),
        image_token_id=4, vision_feature_select_strategy="default", vision_feature_layer=-2,
        projector_hidden_act="gelu")
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlavaForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.eval()
    return HFVisionLanguageModel(model, processor, name="llava-1.5-7b-random", path="random", family=FAMILIES["llava"])


@pytest.fixture(scope="module")
def gpu_workload():
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (384, 384, 3), dtype=np.uint8)) for _ in range(GPU_SAMPLES)]
    prompts = [" ".join(f"w{int(i)}" for i in rng.integers(10, 32000, int(rng.integers(8, 40))))
               + " Answer with a short phrase." for _ in range(GPU_SAMPLES)]
    return [("open", images, prompts)]


def _gpu_run(benchmark, fn, model, workload, batch_size):
    import torch

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()

    def run():
        answers = fn(model, workload)
        torch.cuda.synchronize()
        return answers

    answers = benchmark.pedantic(run, rounds=2, warmup_rounds=1)
    benchmark.extra_info.update(model=model.name, batch_size=batch_size, dtype="bf16",
                                samples_per_second=GPU_SAMPLES / benchmark.stats.stats.mean,
                                peak_memory_gib=torch.cuda.max_memory_allocated() / 2**30)
    return answers


@gpu
@pytest.mark.benchmark(group="generation-7b-gpu")
def test_generation_7b_batched(benchmark, llava7b, gpu_workload):
    answers = _gpu_run(benchmark, _batched, llava7b, gpu_workload, BATCH_SIZE)
    # bf16 kernels for different batch shapes round differently, and random weights make near-ties common,
    # so record (not assert) how many greedy answers match one-at-a-time decoding exactly
    single = _one_at_a_time(llava7b, gpu_workload)
    benchmark.extra_info["identical_to_one_at_a_time"] = sum(a == b for a, b in zip(answers, single)) / len(single)


@gpu
@pytest.mark.benchmark(group="generation-7b-gpu")
def test_generation_7b_one_at_a_time(benchmark, llava7b, gpu_workload):
    _gpu_run(benchmark, _one_at_a_time, llava7b, gpu_workload, 1)
