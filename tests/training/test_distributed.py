"""Data-parallel training on the CPU: two processes (torch.distributed, gloo) with batch size 2 reach what
one process with batch size 4 reaches, and only the main process writes the outputs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="this torch build has no gloo backend for CPU data parallelism")
def test_two_processes_match_one_process_with_the_same_global_batch(tiny_model, image_dir, tmp_path):
    from ddp_script import CONFIG, pairs
    from helpers import LocalDPO
    from safetensors.torch import load_file

    from harness.training import train_preference

    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(_free_port()), str(HERE / "ddp_script.py"),
               str(tiny_model), str(image_dir), str(tmp_path / "ddp"), "2"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    single = train_preference(tiny_model, LocalDPO(), pairs(), image_dir, tmp_path / "single",
                              CONFIG.__class__(**{**CONFIG.to_dict(), "batch_size": 4}))

    history = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [h["loss"] for h in history] == pytest.approx([h["loss"] for h in single.history], rel=1e-5)
    distributed = load_file(tmp_path / "ddp" / "adapter" / "adapter_model.safetensors")
    alone = load_file(single.adapter_path / "adapter_model.safetensors")
    assert distributed.keys() == alone.keys()
    for name, value in alone.items():
        torch.testing.assert_close(distributed[name], value, rtol=1e-3, atol=1e-4)
    assert any(float(v.abs().max()) > 1e-3 for k, v in alone.items() if "lora_B" in k)  # the adapters trained
    assert not list((tmp_path / "ddp").glob(".tmp-*"))
