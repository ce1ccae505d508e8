"""Batched against one-at-a-time greedy generation on the tiny model: the same answers, more samples/s.

Run (``make bench`` runs it too)::

    .venv/bin/pytest benchmarks/test_generation_speed.py --benchmark-only --benchmark-columns=min,mean,rounds

The model is the trained ``tiny`` when it is registered (it is trained and cached under ``HARNESS_HOME``
on first use), else the untrained tiny architecture. The prompts are the first 32 ``synth_vqa`` test
items through the task's own prompt template, answered with the engine's closed/open token budgets,
batched within one answer type as the engine does (batch 16).

The CPU tests run on one intra-op thread whatever ``OMP_NUM_THREADS`` says (the previous setting comes back
afterwards), as the training benchmark does: at torch's default of one thread per core the ratio swung
between runs with whatever else held the second core (docs/benchmarks.md). A round is long enough to be stable: ``BATCHED_PASSES`` passes over the 32 samples
for the batched path (about the time of one one-at-a-time pass), one pass for one-at-a-time, ``ROUNDS``
rounds after a warm-up.

* ``test_generation_batched`` / ``test_generation_one_at_a_time`` (group ``generation``): seconds per 32
  samples, one after the other; the table's factor in parentheses is the ratio of the two (min and mean).
* ``test_generation_paired_speedup`` (group ``generation-paired``): each round runs both paths back to back
  (alternating which goes first), so load that changes during the run moves both alike; ``extra_info``
  holds the per-round ratios and their min, mean and median. Its timed figure is a whole round, not a
  comparison.

Every timed test asserts that batching does not change a single answer.
"""

from __future__ import annotations

import statistics
import tempfile
import time

import pytest

from harness.evaluation import EvalConfig
from harness.models.base import GenerationConfig

N_SAMPLES = 32
BATCH_SIZE = 16
THREADS = 1
ROUNDS = 10
BATCHED_PASSES = 4  # per round: about one one-at-a-time pass's time (32 calls against 4 x 3)


@pytest.fixture(scope="module")
def cpu_threads():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield THREADS
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def model(cpu_threads):
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


def _info(benchmark, model, batch_size, threads):
    benchmark.extra_info.update(model=model.name, batch_size=batch_size, threads=threads,
                                samples_per_second=N_SAMPLES / benchmark.stats.stats.mean)


def test_batched_matches_one_at_a_time(model, workload):
    assert _batched(model, workload) == _one_at_a_time(model, workload)


@pytest.mark.benchmark(group="generation")
def test_generation_batched(benchmark, model, workload, cpu_threads, speed_guard):
    timed = speed_guard.path("generation.batched", _batched, faster_than=["generation.one_at_a_time"])
    answers = benchmark.pedantic(timed, args=(model, workload), rounds=ROUNDS, warmup_rounds=1,
                                 iterations=BATCHED_PASSES)
    assert answers == _one_at_a_time(model, workload)
    _info(benchmark, model, BATCH_SIZE, cpu_threads)


@pytest.mark.benchmark(group="generation")
def test_generation_one_at_a_time(benchmark, model, workload, cpu_threads, speed_guard):
    timed = speed_guard.path("generation.one_at_a_time", _one_at_a_time)
    answers = benchmark.pedantic(timed, args=(model, workload), rounds=ROUNDS, warmup_rounds=1)
    assert answers == _batched(model, workload)
    _info(benchmark, model, 1, cpu_threads)


@pytest.mark.benchmark(group="generation-paired")
def test_generation_paired_speedup(benchmark, model, workload, cpu_threads, speed_guard):
    times: dict[str, list[float]] = {"batched": [], "one_at_a_time": []}
    answers: dict[str, list[str]] = {}
    batched = speed_guard.slowable("generation.batched", _batched)

    def timed(name):
        start = time.perf_counter()
        if name == "batched":
            for _ in range(BATCHED_PASSES):
                answers[name] = batched(model, workload)
            times[name].append((time.perf_counter() - start) / BATCHED_PASSES)
        else:
            answers[name] = _one_at_a_time(model, workload)
            times[name].append(time.perf_counter() - start)

    def one_round():
        order = ("batched", "one_at_a_time") if len(times["batched"]) % 2 == 0 else ("one_at_a_time", "batched")
        for name in order:
            timed(name)

    benchmark.pedantic(one_round, rounds=ROUNDS + 1, iterations=1)
    assert answers["batched"] == answers["one_at_a_time"]
    # the first round is a warm-up
    ratios = [single / batched for single, batched in zip(times["one_at_a_time"][1:], times["batched"][1:])]
    benchmark.extra_info.update(
        model=model.name, batch_size=BATCH_SIZE, threads=cpu_threads, rounds=len(ratios),
        speedup_min=round(min(ratios), 3), speedup_mean=round(statistics.mean(ratios), 3),
        speedup_median=round(statistics.median(ratios), 3), speedups=[round(r, 3) for r in ratios],
        batched_s_median=round(statistics.median(times["batched"][1:]), 4),
        one_at_a_time_s_median=round(statistics.median(times["one_at_a_time"][1:]), 4),
    )
    speed_guard.ratio("generation.paired.batched_vs_one_at_a_time", statistics.median(ratios))
    speed_guard.ratio("generation.paired.batched_vs_one_at_a_time.worst_round", min(ratios))


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
