"""Where a ``generate`` call's time goes: processor, set-up, prefill, decode, post-processing, per call.

Usage:
  python scripts/generation_split.py                      # trained tiny, 32 synth_vqa items, batch 16 vs 1
  python scripts/generation_split.py --untrained          # the untrained tiny (answers its whole budget)
  python scripts/generation_split.py --threads 2 --clock wall --rounds 5 --format json

The workload is the generation benchmark's (benchmarks/test_generation_speed.py): the first ``--samples``
``synth_vqa`` test items through the task's prompt template, greedy, with the engine's closed/open token
budgets, batched within one answer type; the batched path (``--batch-size``) and the one-at-a-time path are
run alternately for ``--rounds`` rounds after a warm-up and the median round is shown.

One ``HFVisionLanguageModel.generate`` call is split at its boundaries, read by wrapping the loaded model's
methods (nothing in the library changes):

* processor: from the call to ``model.generate`` (image conversion, chat template, image processor and
  tokenizer, moving the inputs);
* set-up: ``model.generate`` up to its first forward (generation config, cache, logits processors), less
  any image encoding done there;
* prefill: the vision tower + projector (``get_image_features``) and the first forward over the prompt;
* decode: from the end of the first forward to the end of ``model.generate``, i.e. every later step's
  forward plus the per-step loop (argmax, stopping checks, cache), ``steps`` of them per call;
* post-processing: cutting the new tokens and ``batch_decode``.

``--clock cpu`` (the default) reads the calling thread's CPU time, which other jobs on a shared machine
barely move (with one thread it is the work done); ``--clock wall`` reads ``time.perf_counter``. Timings
are printed in ms per call and per pass over the samples. See docs/benchmarks.md (Generation speed).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import time
from typing import Any

PHASES = ("processor", "set-up", "prefill", "decode", "post-processing")


def out(line: str) -> None:
    sys.stdout.write(line + "\n")


def load(untrained: bool):
    from harness.models import MODELS, load_model
    from harness.models.hf import load_hf_model
    from harness.models.tiny import build_tiny_model

    if not untrained and "tiny" in MODELS:
        return load_model("tiny", device="cpu")
    return load_hf_model(build_tiny_model(tempfile.mkdtemp(prefix="tiny-split-")), device="cpu",
                         name="tiny-untrained")


def workload(samples: int) -> list[tuple[str, list, list[str]]]:
    from harness.tasks import get_task

    task = get_task("synth_vqa")
    groups: dict[str, tuple[list, list[str]]] = {}
    for row in task.load("test").select(range(samples)):
        images, prompts = groups.setdefault(row["answer_type"], ([], []))
        images.append(row["image"])
        prompts.append(task.prompt(row))
    return [(kind, *groups[kind]) for kind in sorted(groups)]


class Split:
    """Wraps one loaded model's methods and records the phase times of each ``generate`` call."""

    def __init__(self, vlm, clock):
        self.clock = clock
        self.calls: list[dict[str, float]] = []
        self._marks: dict[str, Any] = {}
        hf = vlm.model
        self._wrap(vlm, "generate", self._on_call)
        self._wrap(hf, "generate", self._on_hf_generate)
        self._wrap(hf, "forward", self._on_forward)
        base = getattr(hf, "base_model", hf)
        if getattr(base, "get_image_features", None) is not None:
            self._wrap(base, "get_image_features", self._on_vision)

    @staticmethod
    def _wrap(obj, name, around):
        original = getattr(obj, name)

        @functools.wraps(original)  # generate() reads forward's and get_image_features' signatures
        def wrapper(*args, **kwargs):
            return around(original, *args, **kwargs)

        setattr(obj, name, wrapper)

    def _on_call(self, original, *args, **kwargs):
        self._marks = {"start": self.clock(), "forwards": [], "vision": []}
        result = original(*args, **kwargs)
        marks, end = self._marks, self.clock()
        first_start, first_end = marks["forwards"][0]
        vision_before = sum(d for t, d in marks["vision"] if t <= first_start)
        self.calls.append({
            "batch": len(args[1]) if len(args) > 1 else len(kwargs["prompts"]),
            "processor": marks["hf_in"] - marks["start"],
            "set-up": first_start - marks["hf_in"] - vision_before,
            "prefill": first_end - first_start + vision_before,
            "decode": marks["hf_out"] - first_end,
            "post-processing": end - marks["hf_out"],
            "steps": len(marks["forwards"]) - 1,
            "total": end - marks["start"],
        })
        return result

    def _on_hf_generate(self, original, *args, **kwargs):
        self._marks["hf_in"] = self.clock()
        result = original(*args, **kwargs)
        self._marks["hf_out"] = self.clock()
        return result

    def _on_forward(self, original, *args, **kwargs):
        start = self.clock()
        result = original(*args, **kwargs)
        self._marks["forwards"].append((start, self.clock()))
        return result

    def _on_vision(self, original, *args, **kwargs):
        start = self.clock()
        result = original(*args, **kwargs)
        self._marks["vision"].append((start, self.clock() - start))
        return result


def run_pass(vlm, groups, batch_size: int) -> list[str]:
    from harness.evaluation import EvalConfig
    from harness.models.base import GenerationConfig

    answers: list[str] = []
    for kind, images, prompts in groups:
        config = GenerationConfig(max_new_tokens=EvalConfig().max_new_tokens(kind))
        for start in range(0, len(prompts), batch_size):
            answers += vlm.generate(images[start:start + batch_size], prompts[start:start + batch_size], config)
    return answers


def summarize(rounds: list[list[dict[str, float]]]) -> dict[str, Any]:
    """The median round: ms per pass and per call of each phase, decode steps per call."""
    per_pass = {key: statistics.median(sum(c[key] for c in calls) for calls in rounds) * 1e3
                for key in (*PHASES, "total")}
    calls = len(rounds[0])
    return {"calls": calls, "steps_per_call": sum(c["steps"] for c in rounds[0]) / calls,
            "ms_per_pass": {k: round(v, 2) for k, v in per_pass.items()},
            "ms_per_call": {k: round(v / calls, 2) for k, v in per_pass.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=32, help="synth_vqa test items (default 32)")
    parser.add_argument("--batch-size", type=int, default=16, help="the batched path's batch size (default 16)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds after one warm-up (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: the thread's CPU time (default); wall: perf_counter")
    parser.add_argument("--untrained", action="store_true", help="the untrained tiny architecture")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    vlm = load(args.untrained)
    groups = workload(args.samples)
    split = Split(vlm, time.thread_time if args.clock == "cpu" else time.perf_counter)
    paths = {f"batched ({args.batch_size})": args.batch_size, "one at a time": 1}
    rounds: dict[str, list[list[dict[str, float]]]] = {name: [] for name in paths}
    answers: dict[str, list[str]] = {}
    for index in range(args.rounds + 1):
        for name, size in (paths.items() if index % 2 == 0 else reversed(paths.items())):
            split.calls = []
            answers[name] = run_pass(vlm, groups, size)
            if index:  # round 0 is a warm-up
                rounds[name].append(split.calls)
    if len({tuple(a) for a in answers.values()}) != 1:
        raise SystemExit("the batched and one-at-a-time answers differ")
    result = {"model": vlm.name, "samples": args.samples, "threads": args.threads, "clock": args.clock,
              "rounds": args.rounds, "paths": {name: summarize(r) for name, r in rounds.items()}}
    batched, single = (result["paths"][name]["ms_per_pass"]["total"] for name in paths)
    result["speedup"] = round(single / batched, 2)
    if args.format == "json":
        out(json.dumps(result, indent=2))
        return 0
    out(f"{vlm.name}, {args.samples} synth_vqa items, {args.threads} thread(s), {args.clock} time, "
          f"median of {args.rounds} rounds; ms per generate call (per pass over the samples in the last column)")
    out("| path | calls | " + " | ".join(PHASES) + " | decode steps / call | total / call | total / pass |")
    out("|---" * (len(PHASES) + 5) + "|")
    for name, info in result["paths"].items():
        call, per_pass = info["ms_per_call"], info["ms_per_pass"]
        cells = " | ".join(f"{call[p]:.2f}" for p in PHASES)
        out(f"| {name} | {info['calls']} | {cells} | {info['steps_per_call']:.2f} | {call['total']:.2f} | "
              f"{per_pass['total']:.1f} |")
    out(f"speed-up (one-at-a-time pass / batched pass): {result['speedup']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
