"""Atomic, resumable checkpoints: trainable weights, optimizer, scheduler, RNG states and data position.

A checkpoint is written into ``checkpoints/.tmp-step-N`` and renamed to ``checkpoints/step-N`` only when
complete, so a kill -9 at any moment leaves either the previous checkpoint or the new one, never half of
one. The data position is the optimizer step: the data order is a pure function of (seed, epoch), so the
step says exactly which micro-batch comes next. Only the trainable weights are stored (the adapters under
LoRA); under FSDP / DeepSpeed the sharded state goes through ``accelerator.save_state``.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path
from typing import Any

from harness.training.distributed import is_sharded

log = logging.getLogger(__name__)
PREFIX = "step-"


def checkpoint_dirs(output_dir: Path) -> list[Path]:
    root = output_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = checkpoint_dirs(output_dir)
    return found[-1] if found else None


def _rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(output_dir: Path, step: int, *, accelerator: Any, model: Any, optimizer: Any,
                    scheduler: Any, state: dict[str, Any], keep: int) -> Path:
    import torch

    root = output_dir / "checkpoints"
    final = root / f"{PREFIX}{step}"
    tmp = root / f".tmp-{PREFIX}{step}"
    if final.is_dir() and (final / "state.json").is_file():
        return final  # already saved (a resumed run that had finished)
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    if is_sharded(accelerator):
        accelerator.save_state(str(tmp / "accelerate"))
    elif accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        trainable = {n: p.detach().cpu() for n, p in unwrapped.named_parameters() if p.requires_grad}
        torch.save(trainable, tmp / "trainable.pt")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(_rng_state(), tmp / f"rng_{accelerator.process_index}.pt")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step, **state}), encoding="utf-8")
        tmp.replace(final)  # the atomic moment
        for old in checkpoint_dirs(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
        log.info("checkpoint saved at step %d", step)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(path: Path, *, accelerator: Any, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    import torch

    if is_sharded(accelerator):
        accelerator.load_state(str(path / "accelerate"))
    else:
        trainable = torch.load(path / "trainable.pt", weights_only=True)
        unwrapped = accelerator.unwrap_model(model)
        params = dict(unwrapped.named_parameters())
        with torch.no_grad():
            for name, value in trainable.items():
                params[name].copy_(value)
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    rng = path / f"rng_{accelerator.process_index}.pt"
    if rng.is_file():
        _set_rng_state(torch.load(rng, weights_only=False))
    return json.loads((path / "state.json").read_text(encoding="utf-8"))
