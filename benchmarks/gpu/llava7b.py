"""GPU throughput at LLaVA-1.5-7B size, with random weights (no download needed to measure speed).

Two measurements, each side by side in one process on the same model:

- generation: the evaluation engine's batched greedy generation (batch 16, left padding, KV cache)
  against one-at-a-time generation of the same prompts: samples/s, generated tokens/s, peak memory, and
  whether the outputs are identical;
- training: the shared core (one forward over chosen + rejected rows, a text pair's shared image + prompt
  prefix run once; reference = the same weights with the LoRA adapters disabled) against the core
  without prefix sharing (stacked rows), a minimal naive path (separate chosen and rejected forwards
  with full-sequence logits) and the MMedPO release's per-side procedure (``release_forward`` in
  ``benchmarks/test_training_speed.py``). LoRA r=128 alpha=256 on all language-model
  linear layers, bf16, sequences of 1024 tokens (576 image tokens + prompt + response): tokens/s, MFU and
  peak memory. Checkpoint writing is switched off in the timed runs (it measures the disk, not the core).

MFU counts 6·N FLOPs per trained token (policy forward 2N, backward through the frozen weights 2N,
reference forward 2N; N = parameters of the language model and the vision tower applied per token is
small and left out, as are attention's sequence-quadratic FLOPs) against 989 TFLOP/s (H100 SXM dense
bf16). Run on a GPU machine from the repository root:

    PYTHONPATH=. python benchmarks/gpu/llava7b.py --generation --out gen.json
    PYTHONPATH=. python benchmarks/gpu/llava7b.py --training core --out core.json
    PYTHONPATH=. python benchmarks/gpu/llava7b.py --training stacked --out stacked.json
    PYTHONPATH=. python benchmarks/gpu/llava7b.py --training naive --out naive.json
    PYTHONPATH=. python benchmarks/gpu/llava7b.py --training release --out release.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

PEAK_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0}
WORDS = ("the heart size is normal no focal consolidation pleural effusion pneumothorax right left upper lower "
         "lobe opacity mass nodule is seen there chest x ray shows lungs are clear mediastinal contours").split()


def build_model(image_size: int = 336, patch: int = 14, small: bool = False):
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    from harness.models.hf import FAMILIES, HFVisionLanguageModel
    from harness.models.tiny import CHAT_TEMPLATE, IMAGE_TOKEN, _image_processor, build_tokenizer

    tokenizer = build_tokenizer([" ".join(WORDS)] * 50 + ["USER: ASSISTANT: Answer yes or no."], 512)
    processor = LlavaProcessor(image_processor=_image_processor(image_size), tokenizer=tokenizer, patch_size=patch,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=CHAT_TEMPLATE)
    dims = dict(v=(1024, 4096, 24, 16), t=(4096, 11008, 32, 32)) if not small else dict(v=(32, 64, 2, 2), t=(64, 128, 2, 2))
    vision = CLIPVisionConfig(hidden_size=dims["v"][0], intermediate_size=dims["v"][1], num_hidden_layers=dims["v"][2],
                              num_attention_heads=dims["v"][3],
                              image_size=image_size, patch_size=patch, projection_dim=768)
    text = LlamaConfig(vocab_size=32064, hidden_size=dims["t"][0], intermediate_size=dims["t"][1],
                       num_hidden_layers=dims["t"][2], num_attention_heads=dims["t"][3],
                       num_key_value_heads=dims["t"][3], max_position_embeddings=4096,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
                         vision_feature_select_strategy="default", vision_feature_layer=-2)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(_DEVICE):
        model = LlavaForConditionalGeneration(config).to(torch.bfloat16)
    model.eval()
    text_params = sum(p.numel() for n, p in model.named_parameters() if "language_model" in n or "lm_head" in n)
    vlm = HFVisionLanguageModel(model, processor, name="llava-1.5-7b-random", path="(in memory)", family=FAMILIES["llava"])
    return vlm, text_params


def images(n: int, size: int = 336):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def bench_generation(vlm, n: int = 32, batch: int = 16, new_tokens: int = 32) -> dict:
    from harness.models.base import GenerationConfig

    imgs = images(n)
    prompts = [f"Is there a {WORDS[i % len(WORDS)]} in the {WORDS[(3 * i) % len(WORDS)]}?\nAnswer yes or no."
               for i in range(n)]
    cfg = GenerationConfig(max_new_tokens=new_tokens)
    vlm.generate(imgs[:2], prompts[:2], cfg)  # warm-up
    out = {}
    for name, size in (("batched", batch), ("one_at_a_time", 1)):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        texts = []
        for i in range(0, n, size):
            texts += vlm.generate(imgs[i:i + size], prompts[i:i + size], cfg)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        out[name] = {"samples_per_s": n / seconds, "seconds": seconds,
                     "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30, "texts": texts}
    same = sum(a == b for a, b in zip(out["batched"]["texts"], out["one_at_a_time"]["texts"]))
    for v in out.values():
        v.pop("texts")
    out["identical_outputs"] = f"{same}/{n}"
    out["speedup"] = out["batched"]["samples_per_s"] / out["one_at_a_time"]["samples_per_s"]
    return out


def make_pairs(root: Path, n: int):
    from harness.curation.preferences import PreferencePair

    for i, img in enumerate(images(n)):
        img.save(root / f"{i}.png")
    rng = __import__("random").Random(0)

    def text(k):
        return " ".join(rng.choice(WORDS) for _ in range(k))

    return [PreferencePair(id=str(i), image=f"{i}.png", prompt="Describe the findings of this chest X-ray.",
                           chosen=text(700), rejected=text(700)) for i in range(n)]


def bench_training(vlm, text_params: int, path: str, steps: int = 6, batch: int = 2) -> dict:
    """One training path per process, so both start from the same untouched model."""
    import test_training_speed as cpu_bench  # the naive forward of the CPU benchmark

    from baselines.dpo import DPO
    from harness.training import TrainConfig, loop, reference

    gpu = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_TFLOPS.items() if k in gpu), None)
    root = Path(tempfile.mkdtemp())
    pairs = make_pairs(root, batch * (steps + 1))
    loop.ckpt.save_checkpoint = lambda *a, **k: None  # checkpoint I/O is not what is measured
    loop.save_final = lambda *a, **k: (None, None)
    replacement = {"naive": cpu_bench.naive_forward, "release": cpu_bench.release_forward}.get(path)
    if replacement is not None:
        loop.sequence_logps = replacement
        reference.sequence_logps = replacement
    config = TrainConfig(lr=1e-7, max_steps=steps + 1, batch_size=batch, lora_r=128, lora_alpha=256,
                         lora_dropout=0.0, precision="bf16", max_length=1024, merge_lora=False, warmup_ratio=0.0,
                         share_prefix=path == "core")
    marks: list[float] = []
    original = DPO.loss

    def timed_loss(self, policy, ref, weights):
        torch.cuda.synchronize()
        marks.append(time.perf_counter())
        return original(self, policy, ref, weights)

    DPO.loss = timed_loss
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    loop.train_preference(vlm, DPO(), pairs, root, root / "out", config)
    torch.cuda.synchronize()
    end = time.perf_counter()
    # from the loss of step 2 to the loss of the last step: `steps - 1` whole steps after warm-up
    seconds = marks[-1] - marks[1]
    timed_steps = len(marks) - 2
    seq_tokens = batch * 2 * 1024
    tok_per_s = timed_steps * seq_tokens / seconds
    return {"path": path, "tokens_per_s": tok_per_s, "step_seconds": seconds / timed_steps,
            "total_seconds": end - start, "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30,
            "mfu": (6 * text_params * tok_per_s / 1e12 / peak) if peak else None, "gpu": gpu}


def _cpu_shims() -> None:
    """Let the smoke test run without a GPU: the CUDA calls become no-ops and "cuda" means the CPU."""
    torch.cuda.synchronize = lambda *a, **k: None
    torch.cuda.reset_peak_memory_stats = lambda *a, **k: None
    torch.cuda.max_memory_allocated = lambda *a, **k: 0
    torch.cuda.empty_cache = lambda *a, **k: None
    torch.cuda.get_device_name = lambda *a, **k: "cpu (smoke test)"
    global _DEVICE
    _DEVICE = "cpu"


_DEVICE = "cuda"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="gpu_results.json")
    parser.add_argument("--generation", action="store_true", help="batched vs one-at-a-time generation")
    parser.add_argument("--small", action="store_true", help="tiny dimensions on the CPU: a smoke test of this script")
    parser.add_argument("--training", choices=("core", "stacked", "naive", "release"),
                        help="one training path: core (prefix sharing), stacked (core without it), naive "
                             "(separate forwards), release (the MMedPO release's per-side procedure)")
    args = parser.parse_args()
    if args.small:
        _cpu_shims()
    vlm, text_params = build_model(small=args.small)
    result = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "text_params": text_params}
    if args.generation:
        result["generation"] = bench_generation(vlm)
        print(json.dumps(result["generation"], indent=1), flush=True)
    if args.training:
        result["training"] = bench_training(vlm, text_params, args.training)
        print(json.dumps(result["training"], indent=1), flush=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
