"""Sharded training on CPU processes: ``harness train`` under FSDP2 (``accelerate launch`` with
examples/accelerate/fsdp2_cpu.yaml, two gloo processes, per-process batch 2) computes what one process with
batch 4 computes, for full fine-tuning and LoRA, on packed text pairs and stacked visual pairs; its
reference log-probs are the one-process ones; a run killed after a checkpoint resumes to the uninterrupted
result; only the main process logs steps and writes the run's files. The same comparisons for DeepSpeed
ZeRO-3 (examples/accelerate/deepspeed_zero3_cpu.yaml) run where DeepSpeed is installed (it is optional).

Tolerances: every run is fp32. The sharded runs and the single process see the same pairs per optimizer
step, but in micro-batches of 2 instead of 4 (other padding, so other matmul shapes) and with gradients
summed across two processes: the same numbers added in another order, which moves fp32 results by a few
ulps. Losses and reference log-probs are compared at 1e-5 relative (measured: 6e-8 apart). Weights:
AdamW divides each gradient entry by its own running magnitude, so an entry whose gradient is near zero
turns that rounding noise into a visible share of its step (measured after four steps at lr 5e-3: 5 of
16,384 entries of one matrix differ by more than 1e-6, the largest by 3e-5, an entry that moved 4.4e-3).
So: every entry within 1e-4 (2% of one step's lr) and at most 0.1% of the entries of a tensor beyond
1e-6. A wrong sharding (a process training on its own half of the data, a reference that moves) changes
losses in the second decimal. A resumed sharded run repeats the same sharded computations, so it must
match the uninterrupted one bitwise.

One launch runs several trainings (processes cost more to start than the tiny model costs to train).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import make_pairs
from sharded_launch import Journal

from harness.curation.preferences import write_pairs

ROOT = Path(__file__).resolve().parents[2]
FSDP2_CPU = ROOT / "examples" / "accelerate" / "fsdp2_cpu.yaml"
ZERO3_CPU = ROOT / "examples" / "accelerate" / "deepspeed_zero3_cpu.yaml"
LAUNCH = Path(__file__).with_name("sharded_launch.py")
STEPS = 4


def _fsdp2_available() -> bool:
    try:
        from torch.distributed.fsdp import fully_shard  # noqa: F401
    except ImportError:
        return False
    return True


pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="this torch build has no gloo backend for CPU processes")
needs_fsdp2 = pytest.mark.skipif(not _fsdp2_available(), reason="this torch build has no FSDP2 (fully_shard)")
needs_deepspeed = pytest.mark.skipif(
    importlib.util.find_spec("deepspeed") is None or shutil.which("c++") is None,
    reason="DeepSpeed on CPUs needs the package (the project's `deepspeed` extra, in `all`) and a C++ compiler "
           "for its CPU accelerator's op")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(config: Path, journal: Path, runs: list[list[str]]) -> subprocess.CompletedProcess:
    args = [a for i, run in enumerate(runs) for a in ([] if i == 0 else ["--next"]) + run]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "FSDP_"))}
    env |= {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(LAUNCH.parent), str(ROOT)])}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
               "--main_process_port", str(_free_port()), str(LAUNCH), str(journal), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)


def _single(common: list[str], extra: list[str], journal: Journal) -> None:
    """One process, batch 4, in this process; records the reference log-probs like the launch does."""
    from harness.cli import main
    from harness.training import reference

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACCELERATE_USE_CPU", "true")
        patch.setattr(reference.ModelReference, "groups", journal.groups(reference.ModelReference.groups))
        assert main(["train", *common, *extra, "--batch-size", "4"]) == 0


FULL, LORA = ["--no-lora"], ["--lora"]


@pytest.fixture(scope="module")
def single(tiny_model, image_dir, tmp_path_factory):
    """The same training in one process with batch 4: full fine-tuning and LoRA."""
    tmp = tmp_path_factory.mktemp("sharded")
    # text pairs (packed rows) and visual pairs (stacked rows) mixed, so each process runs both layouts
    visual = [dataclasses.replace(p, id=f"v{i}") for i, p in enumerate(make_pairs(4, visual=True))]
    write_pairs(tmp / "pairs.jsonl", make_pairs(8) + visual)
    common = ["--method", "dpo", "--model", str(tiny_model), "--pairs", str(tmp / "pairs.jsonl"),
              "--image-root", str(image_dir), "--max-steps", str(STEPS), "--lr", "5e-3", "--warmup-ratio", "0",
              "--save-every", "2", "--lora-r", "4", "--lora-dropout", "0"]
    journals = {}
    for name, extra in (("full", FULL), ("lora", LORA)):
        journals[name] = Journal()
        _single(common, [*extra, "--output", str(tmp / f"single-{name}")], journals[name])
    return {"tmp": tmp, "common": common, "journals": journals}


@pytest.fixture(scope="module")
def runs(single):
    """FSDP2: full fine-tuning, LoRA and a run killed after its step-2 checkpoint in one launch, then the
    killed run resumed in a second launch."""
    tmp, common, full, lora = single["tmp"], single["common"], FULL, LORA
    sharded = [
        [*common, *full, "--batch-size", "2", "--output", str(tmp / "full")],
        [*common, *lora, "--batch-size", "2", "--output", str(tmp / "lora")],
        ["--die-after-checkpoint", "2", *common, *full, "--batch-size", "2", "--output", str(tmp / "killed")],
    ]
    first = _launch(FSDP2_CPU, tmp / "journal", sharded)
    assert first.returncode != 0, "the run set to die after its checkpoint finished"
    assert "Signals.SIGKILL" in first.stderr or f"exitcode  : -{int(signal.SIGKILL)}" in first.stderr, \
        first.stderr[-3000:]
    # the killed run left its step-2 checkpoint and no final weights; the two before it finished
    assert not (tmp / "killed" / "model").exists() and (tmp / "killed" / "checkpoints" / "step-2").is_dir()
    assert (tmp / "full" / "model").is_dir() and (tmp / "lora" / "adapter").is_dir(), first.stderr[-3000:]
    resumed = _launch(FSDP2_CPU, tmp / "journal-resume", [[*common, *full, "--batch-size", "2", "--output",
                                                 str(tmp / "killed"), "--resume"]])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return {"tmp": tmp, "first": first, "resumed": resumed, "single": single["journals"], "prefix": ""}


@pytest.fixture(scope="module")
def zero3(single):
    """DeepSpeed ZeRO-3 on CPU processes: full fine-tuning and LoRA in one launch."""
    tmp, common = single["tmp"], single["common"]
    launch = _launch(ZERO3_CPU, tmp / "journal", [
        [*common, *FULL, "--batch-size", "2", "--output", str(tmp / "ds-full")],
        [*common, *LORA, "--batch-size", "2", "--output", str(tmp / "ds-lora")],
    ])
    assert launch.returncode == 0, launch.stderr[-3000:]
    assert launch.stderr.count("DeepSpeed on CPU processes") == 4  # two runs, each on two processes
    return {"tmp": tmp, "first": launch, "single": single["journals"], "prefix": "ds-"}


def _history(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    name = "adapter_model.safetensors" if folder.name == "adapter" else "model.safetensors"
    return load_file(str(folder / name))


def _journal(tmp: Path, run: str, rank: int) -> dict:
    return json.loads((tmp / "journal" / run / f"rank{rank}.json").read_text())


def _matches_one_process(result: dict, run: str, base_model: Path) -> None:
    """Same loss history (and step metrics gathered over processes) and final weights as one process."""
    tmp, out = result["tmp"], result["prefix"] + run
    sharded, alone = _history(tmp / out), _history(tmp / f"single-{run}")
    assert [h["step"] for h in sharded] == list(range(1, STEPS + 1))
    for key in ("loss", "rewards/accuracies", "rewards/margins", "learning_rate"):
        assert [h[key] for h in sharded] == pytest.approx([h[key] for h in alone], rel=1e-5, abs=1e-6), key
    folders = ["model"] if run == "full" else ["adapter", "model"]  # model/: the LoRA merged into the base
    base = _weights(base_model)
    for folder in folders:
        a, b = _weights(tmp / out / folder), _weights(tmp / f"single-{run}" / folder)
        assert a.keys() == b.keys(), folder
        for name, value in b.items():
            diff = (a[name] - value).abs()
            assert float(diff.max()) <= 1e-4, (folder, name, float(diff.max()))
            assert int((diff > 1e-6).sum()) <= value.numel() // 1000, (folder, name, int((diff > 1e-6).sum()))
        if folder == "model":  # and it moved the language model away from the base
            moved = max(float((b[k] - base[k]).abs().max()) for k in b if "language_model" in k)
            assert moved > 1e-3, moved


def _reference_matches_one_process(result: dict, run: str) -> None:
    """Every reference log-prob a process computed equals the one-process reference of that pair."""
    sharded = {}
    for rank in (0, 1):
        for pid, seen in _journal(result["tmp"], result["prefix"] + run, rank)["reference"].items():
            sharded.setdefault(pid, []).extend(seen)
    alone = result["single"][run].reference
    assert sharded.keys() == alone.keys() and len(alone) == 12
    for pid, seen in sharded.items():
        assert len(seen) >= 1
        first = alone[pid][0]
        assert first.keys() == {"chosen", "rejected"}
        # the reference never moves while the policy trains, and equals the one-process reference
        for values in seen + alone[pid]:
            for group, value in values.items():
                assert value == pytest.approx(first[group], rel=1e-6, abs=1e-5), (pid, group)


def _only_main_writes(result: dict, run: str) -> None:
    tmp, out = result["tmp"], result["prefix"] + run
    assert _journal(tmp, out, 1)["writes"] == []
    assert sorted(set(_journal(tmp, out, 0)["writes"])) == ["final weights", "metrics.jsonl", "train_config.json"]
    assert not list((tmp / out).rglob(".tmp-*"))  # nothing left half-written


@needs_fsdp2
@pytest.mark.parametrize("run", ["full", "lora"])
def test_fsdp2_two_processes_match_one_process(runs, run, tiny_model):
    _matches_one_process(runs, run, tiny_model)


@needs_fsdp2
@pytest.mark.parametrize("run", ["full", "lora"])
def test_fsdp2_reference_gives_the_one_process_reference_log_probs(runs, run):
    """Full fine-tuning: a frozen copy sharded like the policy; LoRA: the policy with adapters disabled."""
    _reference_matches_one_process(runs, run)


@needs_fsdp2
def test_fsdp2_resume_after_a_kill_reaches_the_uninterrupted_run_bitwise(runs):
    tmp = runs["tmp"]
    assert "resumed from step-2" in runs["resumed"].stderr
    assert _history(tmp / "killed") == _history(tmp / "full")
    a, b = _weights(tmp / "killed" / "model"), _weights(tmp / "full" / "model")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "the resumed run differs from the uninterrupted run"


@needs_fsdp2
def test_fsdp2_only_the_main_process_logs_steps_and_writes_the_run_files(runs):
    tmp, log = runs["tmp"], runs["first"].stderr
    assert log.count("FSDP2 on 2 CPU processes") == 2  # both processes really ran sharded
    for step in range(1, STEPS + 1):
        # three runs in the launch: the killed one died in step 3 before logging it
        assert log.count(f"step {step}/{STEPS} ") == (3 if step <= 2 else 2), step
    assert runs["first"].stdout.count(f"trained dpo for {STEPS} steps") == 2  # the main process reports
    for run in ("full", "lora"):
        _only_main_writes(runs, run)
        # each process writes its own shard of a checkpoint (model and optimizer)
        shards = sorted(p.name for p in (tmp / run / "checkpoints" / "step-4" / "accelerate").rglob("*.distcp"))
        assert len(shards) == 4 and any(s.startswith("__1_") for s in shards)


@needs_deepspeed
@pytest.mark.parametrize("run", ["full", "lora"])
def test_deepspeed_zero3_two_processes_match_one_process(zero3, run, tiny_model):
    """The full-fine-tuning reference is a whole frozen copy per process here (see docs/training.md)."""
    _matches_one_process(zero3, run, tiny_model)
    _reference_matches_one_process(zero3, run)
    _only_main_writes(zero3, run)
    assert zero3["first"].stderr.count(f"step {STEPS}/{STEPS} ") == 2  # once per run, from the main process

