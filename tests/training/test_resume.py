"""Exact resume after kill -9, and the non-finite-loss stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import LocalDPO, make_pairs, trainable_state

from harness.core.errors import HarnessError
from harness.models.hf import load_hf_model
from harness.training import TrainConfig, train_preference
from harness.training.checkpoint import latest_checkpoint

SCRIPT = Path(__file__).with_name("run_script.py")


def _run(model, images, out, resume, slow):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(SCRIPT), str(model), str(images), str(out), resume, slow],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_resume_after_sigkill_reaches_the_same_weights_bitwise(tiny_model, image_dir, tmp_path):
    straight = _run(tiny_model, image_dir, tmp_path / "straight", "0", "0")
    killed = _run(tiny_model, image_dir, tmp_path / "killed", "0", "1")
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "killed" / "checkpoints" / "step-3").exists():
        assert killed.poll() is None, killed.stderr.read().decode()[-2000:]
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)  # mid-run: somewhere in step 4 or while writing its checkpoint
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "model").exists()
    assert latest_checkpoint(tmp_path / "killed").name in ("step-3", "step-4")
    resumed = _run(tiny_model, image_dir, tmp_path / "killed", "1", "0")
    for proc in (straight, resumed):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
    a = trainable_state(tmp_path / "straight" / "model")
    b = trainable_state(tmp_path / "killed" / "model")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run differs from the uninterrupted run"


class NaNAfter(LocalDPO):
    """Returns NaN losses from the third micro-batch on."""

    calls = 0

    def loss(self, policy, reference, weights):
        NaNAfter.calls += 1
        out = super().loss(policy, reference, weights)
        if NaNAfter.calls >= 3:
            out.losses = out.losses * float("nan")
        return out


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(tiny_model, image_dir, tmp_path):
    config = TrainConfig(max_steps=6, batch_size=2, save_every=1, save_total_limit=5)
    with pytest.raises(HarnessError, match=r"loss is nan at step 3 .*last good checkpoint: step-2"):
        train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), NaNAfter(), make_pairs(4), image_dir,
                         tmp_path / "run", config)
    assert latest_checkpoint(tmp_path / "run").name == "step-2"
    assert not (tmp_path / "run" / "model").exists()
    # the kept checkpoint resumes cleanly with a healthy loss
    result = train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), LocalDPO(), make_pairs(4),
                              image_dir, tmp_path / "run",
                              TrainConfig(max_steps=3, batch_size=2, save_every=1), resume=True)
    assert len(result.history) == 3 and all(h["loss"] == h["loss"] for h in result.history)
