"""Step lines (``log_every``) and what a launch config may ask for on CPU processes."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from helpers import LocalDPO, make_pairs

from harness.core.errors import HarnessError
from harness.models.hf import load_hf_model
from harness.training import TrainConfig, train_preference
from harness.training import distributed as dist
from harness.training.loop import MAX_STEP_LINES, log_interval, logs_step


def _logged(steps: int, every: int = 0) -> list[int]:
    return [s for s in range(1, steps + 1) if logs_step(s, steps, every)]


def test_default_step_lines_stay_near_fifty_and_include_first_and_last():
    for steps in (1, 4, 50, 51, 450, 10_000):
        lines = _logged(steps)
        assert lines[0] == 1 and lines[-1] == steps
        assert len(lines) <= MAX_STEP_LINES + 2, steps
    assert _logged(4) == [1, 2, 3, 4]  # short runs log every step
    assert log_interval(450) == 9 and len(_logged(450)) == 51  # 450 steps: 50 lines at 9, 18, ..., 450, and step 1
    assert _logged(10, every=3) == [1, 3, 6, 9, 10]  # an explicit interval, plus the first and last step
    with pytest.raises(HarnessError, match="log_every"):
        TrainConfig(log_every=-1)


def test_training_logs_the_chosen_steps_only(tiny_model, image_dir, tmp_path, caplog):
    config = TrainConfig(max_steps=4, batch_size=2, log_every=3, lora_r=4)
    with caplog.at_level(logging.INFO, logger="harness.training.loop"):
        train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), LocalDPO(), make_pairs(4),
                         image_dir, tmp_path / "run", config)
    lines = [r.getMessage().split()[1] for r in caplog.records if r.getMessage().startswith("step ")]
    assert lines == ["1/4", "3/4", "4/4"]
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 4  # the history keeps every step


@pytest.mark.parametrize("env, message", [
    ({"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "1"}, "FSDP v1 does not run on CPUs"),
    ({"ACCELERATE_USE_FSDP": "true"}, "FSDP v1 does not run on CPUs"),
    ({"ACCELERATE_USE_DEEPSPEED": "true"}, "asks for DeepSpeed, which is not installed"),
])
def test_cpu_launches_that_cannot_shard_are_refused_not_run_as_ddp(monkeypatch, env, message):
    monkeypatch.setattr(dist, "has_accelerator", lambda: False)
    monkeypatch.setattr(dist.importlib.util, "find_spec", lambda name: None)  # as where DeepSpeed is missing
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if "FSDP_VERSION" not in env:
        monkeypatch.delenv("FSDP_VERSION", raising=False)
    with pytest.raises(HarnessError, match=message):
        dist.make_accelerator(mixed_precision="no", log_with=None, project_dir=".")


def test_deepspeed_takes_the_batch_and_clipping_from_the_training_options():
    plugin = SimpleNamespace(deepspeed_config={"train_micro_batch_size_per_gpu": "auto", "gradient_clipping": 1.0})
    accelerator = SimpleNamespace(distributed_type=SimpleNamespace(name="DEEPSPEED"), num_processes=2,
                                  state=SimpleNamespace(deepspeed_plugin=plugin))
    dist.configure_deepspeed(accelerator, batch_size=3, grad_accum=1, max_grad_norm=0.5)
    assert plugin.deepspeed_config == {"train_micro_batch_size_per_gpu": 3, "train_batch_size": 6,
                                       "gradient_accumulation_steps": 1, "gradient_clipping": 0.5}
    with pytest.raises(HarnessError, match="under DeepSpeed --grad-accum must be 1"):
        dist.configure_deepspeed(accelerator, batch_size=3, grad_accum=2, max_grad_norm=0.5)


def test_launch_kind_reads_the_launcher_variables(monkeypatch):
    for key in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"):
        monkeypatch.delenv(key, raising=False)
    assert dist.launch_kind() == "ddp"
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert dist.launch_kind() == "fsdp"
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "True")
    assert dist.launch_kind() == "deepspeed"
