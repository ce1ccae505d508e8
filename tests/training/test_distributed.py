"""Data-parallel training on the CPU: ``harness train`` under two processes (torch.distributed, gloo) with
batch size 2 reaches what one process with batch size 4 reaches, and only the main process writes and
reports."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from helpers import make_pairs

from harness.curation.preferences import write_pairs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="this torch build has no gloo backend for CPU data parallelism")
def test_two_processes_match_one_process_with_the_same_global_batch(tiny_model, image_dir, tmp_path):
    from safetensors.torch import load_file

    from harness.cli import main

    # text pairs (packed rows) and visual pairs (stacked rows) mixed, so each process runs both layouts
    visual = [dataclasses.replace(p, id=f"v{i}") for i, p in enumerate(make_pairs(4, visual=True))]
    pairs = tmp_path / "pairs.jsonl"
    write_pairs(pairs, make_pairs(8) + visual)
    args = ["train", "--method", "dpo", "--model", str(tiny_model), "--pairs", str(pairs),
            "--image-root", str(image_dir), "--max-steps", "3", "--lr", "5e-3", "--lora-r", "4",
            "--lora-dropout", "0", "--warmup-ratio", "0", "--no-merge-lora"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCELERATE_")} | {"OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(_free_port()), "-m", "harness",
               *args, "--batch-size", "2", "--output", str(tmp_path / "ddp")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained dpo for 3 steps") == 1  # the main process reports, once
    assert main([*args, "--batch-size", "4", "--output", str(tmp_path / "single")]) == 0

    def history(run):
        return [json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    assert history("ddp") == pytest.approx(history("single"), rel=1e-5)
    distributed = load_file(tmp_path / "ddp" / "adapter" / "adapter_model.safetensors")
    alone = load_file(tmp_path / "single" / "adapter" / "adapter_model.safetensors")
    assert distributed.keys() == alone.keys()
    for name, value in alone.items():
        torch.testing.assert_close(distributed[name], value, rtol=1e-3, atol=1e-4)
    assert any(float(v.abs().max()) > 1e-3 for k, v in alone.items() if "lora_B" in k)  # the adapters trained
    assert not list((tmp_path / "ddp").rglob(".tmp-*"))
