"""``harness eval`` under ``torchrun`` on CPU processes (gloo): the items are split between the processes,
the main process alone merges, scores, stores and prints, and the answers equal a one-process run's.

The model is the tiny LLaVA of ``harness.models.tiny``, untrained but with its weights noised so that its
greedy answers differ from item to item (an untrained one answers every item alike, so a mix-up would not
show); training the registered ``tiny`` takes minutes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from harness.cli import main
from harness.core.errors import HarnessError
from harness.core.io import read_jsonl
from harness.evaluation.distributed import ProcessGroup, held_by_main
from harness.results import ResultsStore

ARGS = ["--tasks", "synth_vqa", "--limit", "12", "--batch-size", "4", "--max-new-tokens-closed", "4",
        "--max-new-tokens-open", "6", "--no-progress", "--format", "json"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def noisy_tiny(tmp_path_factory):
    from transformers import LlavaForConditionalGeneration

    from harness.models.tiny import build_tiny_model

    folder = build_tiny_model(tmp_path_factory.mktemp("noisy_tiny"))
    model = LlavaForConditionalGeneration.from_pretrained(folder)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.5)
    model.save_pretrained(folder)
    return folder


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="this torch build has no gloo backend for CPU processes")
def test_two_cpu_processes_split_the_items_and_match_one_process(noisy_tiny, tmp_path, capsys):
    from harness.core.paths import runs_dir

    store = ["--store", str(tmp_path / "r.sqlite")]
    # one process first: it also builds the synthetic split (in the session's HARNESS_HOME) for the launch
    assert main(["eval", "--model", str(noisy_tiny), *ARGS, *store, "--run-id", "mp-one"]) == 0
    one = json.loads(capsys.readouterr().out)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCELERATE_")} | {"OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(_free_port()), "-m", "harness", "eval", "--model", str(noisy_tiny), *ARGS, *store,
               "--run-id", "mp-two"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads(done.stdout)  # one JSON document: only the main process prints
    assert two["run_id"] == "mp-two" and done.stderr.count("run mp-two: evaluating") == 1
    assert two["results"] == one["results"]

    def predictions(run_id):
        return list(read_jsonl(runs_dir() / run_id / "predictions" / "synth_vqa.jsonl"))

    assert predictions("mp-two") == predictions("mp-one")  # item by item, in the task's order
    assert len({r["prediction"] for r in predictions("mp-one")}) > 3  # answers differ: a mix-up would show
    parts = sorted((runs_dir() / "mp-two" / "predictions").glob("synth_vqa.part-*.jsonl"))
    assert [p.name for p in parts] == ["synth_vqa.part-0.jsonl", "synth_vqa.part-1.jsonl"]
    shares = [{r["id"] for r in read_jsonl(p)} for p in parts]
    assert [len(share) for share in shares] == [6, 6] and not shares[0] & shares[1]  # each item answered once
    assert shares[0] | shares[1] == {r["id"] for r in predictions("mp-one")}
    assert [r["run_id"] for r in ResultsStore(tmp_path / "r.sqlite").runs()] == ["mp-one", "mp-two"]


def test_the_main_process_holds_the_lock_and_every_process_hears_a_refusal():
    held = []

    class Lock:
        def __enter__(self):
            held.append(True)

        def __exit__(self, *exc):
            held.pop()

    with held_by_main(ProcessGroup(0, 2, broadcast=lambda value: value), Lock):
        assert held == [True]
    assert held == []
    with held_by_main(ProcessGroup(1, 2, broadcast=lambda value: None), Lock):
        assert held == []  # another process of the launch holds it for this one
    refusal = "run 'x' is in use by another process (pid 7)"
    with pytest.raises(HarnessError, match="in use"):  # what the main process broadcast when it was refused
        with held_by_main(ProcessGroup(1, 2, broadcast=lambda value: refusal), Lock):
            pass
