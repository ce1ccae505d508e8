"""How the training core meets ``accelerate launch``: DDP, FSDP2 (also on CPU processes) and DeepSpeed.

``accelerate launch --config_file examples/accelerate/<name>.yaml`` passes its choice to the processes it
starts through environment variables (``ACCELERATE_USE_FSDP``, ``FSDP_VERSION``, ``ACCELERATE_USE_DEEPSPEED``,
...); ``accelerate.Accelerator`` reads them. What accelerate does not do is done here:

* **FSDP2 on CPU processes.** accelerate (1.x) only turns FSDP on for accelerator devices: with ``use_cpu``
  and several processes it silently falls back to DDP (``MULTI_CPU``), so a CPU "FSDP" run was really a
  DDP run. torch's ``fully_shard`` runs on CPU tensors over gloo, so when the launch asks for FSDP v2 and
  there is no GPU, :func:`make_accelerator` switches the state to FSDP with the plugin accelerate built from
  the same variables; everything after that (sharding, sharded checkpoints, the gathered final state dict)
  is accelerate's own FSDP2 code, the code a GPU run uses. FSDP v1 cannot run on CPUs (accelerate refuses
  it: "no available devices found"): refused with a one-line error instead of silently training under DDP.
* **DeepSpeed on CPU processes.** DeepSpeed has a CPU accelerator (gloo); accelerate reaches it only when
  told not to use the CPU and given the gloo backend, which :func:`make_accelerator` does when the launch
  asks for DeepSpeed and there is no GPU. :func:`configure_deepspeed` fills in what DeepSpeed would
  otherwise take from a data loader the core never hands to accelerate.
* **Which layers form FSDP units.** The transformer-based wrap policy takes the model's
  ``_no_split_modules``; a vision-language model lists classes of both towers, some absent from the
  loaded model (LLaVA names ``CLIPTextEmbeddings``), and accelerate then refuses to wrap at all.
  :func:`set_wrap_classes` keeps the classes the model has, unless the config names them.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import logging
import os
from typing import Any

from harness.core.errors import HarnessError

log = logging.getLogger(__name__)
CPU_FSDP_CONFIG = "examples/accelerate/fsdp2_cpu.yaml"


def has_accelerator() -> bool:
    """A GPU (or other torch accelerator) is present; ``torch.accelerator`` exists from torch 2.6."""
    import torch

    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None:
        return bool(accelerator.is_available())
    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.is_available() or bool(mps is not None and mps.is_available())


def _flag(name: str) -> bool:
    return os.environ.get(name, "false").strip().lower() in ("1", "true", "yes")


def runs_on_cpu() -> bool:
    """The launch's processes use CPUs: the launch config says ``use_cpu: true`` (accelerate passes it on as
    ``ACCELERATE_USE_CPU``) or there is no GPU."""
    return _flag("ACCELERATE_USE_CPU") or not has_accelerator()


def launch_kind() -> str:
    """What the launcher asked for: ``fsdp``, ``deepspeed`` or ``ddp`` (plain data parallel or one process)."""
    if _flag("ACCELERATE_USE_DEEPSPEED"):
        return "deepspeed"
    if _flag("ACCELERATE_USE_FSDP"):
        return "fsdp"
    return "ddp"


def make_accelerator(*, mixed_precision: str, log_with: str | None, project_dir: str) -> Any:
    """An ``Accelerator`` for this launch; FSDP2 on CPU processes where the launch config asks for FSDP v2."""
    from accelerate import Accelerator

    cpu = runs_on_cpu()
    kind = launch_kind()
    if kind == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
        raise HarnessError("the launch config asks for DeepSpeed, which is not installed (pip install deepspeed); "
                           f"FSDP2 needs nothing more: examples/accelerate/fsdp2.yaml, or {CPU_FSDP_CONFIG} on CPUs")
    if cpu and kind == "deepspeed":
        # DeepSpeed's CPU accelerator over gloo. accelerate's use_cpu path knows no DeepSpeed (it runs DDP), and
        # without a backend it counts every process as alone although DeepSpeed connected them: name gloo
        from accelerate import InitProcessGroupKwargs

        log.info("DeepSpeed on CPU processes (gloo)")
        close_process_group_at_exit()
        return Accelerator(cpu=False, mixed_precision=mixed_precision, log_with=log_with, project_dir=project_dir,
                           kwargs_handlers=[InitProcessGroupKwargs(backend="gloo")])
    if cpu and kind == "fsdp" and os.environ.get("FSDP_VERSION", "1").strip() != "2":
        raise HarnessError("FSDP v1 does not run on CPUs (accelerate finds no devices); set fsdp_version: 2 in "
                           f"the launch config, as in {CPU_FSDP_CONFIG}")
    # without a GPU, say so: otherwise processes started by torch.distributed.run each train alone
    accelerator = Accelerator(cpu=cpu, mixed_precision=mixed_precision, log_with=log_with, project_dir=project_dir)
    if cpu and kind == "fsdp" and accelerator.distributed_type.name == "MULTI_CPU":
        _fsdp2_on_cpu(accelerator, mixed_precision)
    close_process_group_at_exit()
    return accelerator


@functools.cache
def close_process_group_at_exit() -> None:
    """Destroy the launch's process group when the process exits (once per process, after every training run
    or evaluation it holds). Left to interpreter teardown, gloo's threads were sometimes destroyed while still
    joinable and a rank that had finished its work aborted ("terminate called without an active exception",
    SIGABRT), so the launch failed after a successful run."""
    atexit.register(_destroy_process_group)


def _destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception as exc:  # noqa: BLE001 - at exit, a failed teardown must not mask the run's own result
            log.debug("process group teardown at exit failed: %s", exc)


def _fsdp2_on_cpu(accelerator: Any, mixed_precision: str) -> None:
    """Turn accelerate's CPU data-parallel state into FSDP2 over the same gloo process group."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    plugin = FullyShardedDataParallelPlugin()  # from the FSDP_* variables the launcher set
    if mixed_precision != "no":
        plugin.set_mixed_precision(mixed_precision)
    state = accelerator.state
    state.fsdp_plugin = plugin
    state.distributed_type = DistributedType.FSDP
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    if not accelerator.is_fsdp2:
        raise HarnessError(f"could not switch this accelerate version ({_accelerate_version()}) to FSDP2 on CPUs")
    log.info("FSDP2 on %d CPU processes (gloo)", accelerator.num_processes)


def _accelerate_version() -> str:
    import accelerate

    return accelerate.__version__


def configure_deepspeed(accelerator: Any, batch_size: int, grad_accum: int, max_grad_norm: float) -> None:
    """Under DeepSpeed: the micro-batch size and clipping come from the training options.

    The core builds its own per-process batches and never hands accelerate a data loader, so DeepSpeed's
    ``train_micro_batch_size_per_gpu: auto`` has nothing to be resolved from (accelerate refuses to
    prepare the model). DeepSpeed steps inside ``accelerator.backward`` and accumulates by its own count,
    which the core's accumulation loop does not drive, so ``grad_accum`` must be 1 there.
    """
    if accelerator.distributed_type.name != "DEEPSPEED":
        return
    if grad_accum != 1:
        raise HarnessError("under DeepSpeed --grad-accum must be 1 (DeepSpeed steps in every backward); "
                           "raise --batch-size or the number of processes instead")
    ds = accelerator.state.deepspeed_plugin.deepspeed_config
    ds["train_micro_batch_size_per_gpu"] = batch_size
    ds["train_batch_size"] = batch_size * accelerator.num_processes
    ds["gradient_accumulation_steps"] = 1
    ds["gradient_clipping"] = max_grad_norm


def is_sharded(accelerator: Any) -> bool:
    """Weights and optimizer state live in shards (FSDP, DeepSpeed): no process holds the whole model."""
    return accelerator.distributed_type.name in ("FSDP", "DEEPSPEED")


def set_wrap_classes(accelerator: Any, model: Any) -> None:
    """Under FSDP with the transformer wrap policy, wrap the ``_no_split_modules`` classes the model has."""
    if accelerator.distributed_type.name != "FSDP":
        return
    plugin = accelerator.state.fsdp_plugin
    if plugin.transformer_cls_names_to_wrap is not None:
        return
    policy = plugin.auto_wrap_policy
    name = policy if isinstance(policy, str) else getattr(getattr(policy, "func", policy), "__name__", "")
    if "transformer" not in str(name).lower():
        return
    present = {type(m).__name__ for m in model.modules()}
    listed = getattr(model, "_no_split_modules", None) or ()
    wrap = sorted(n for n in listed if n in present)
    if wrap:
        plugin.transformer_cls_names_to_wrap = wrap
        log.info("FSDP units: %s", ", ".join(wrap))


def shard_frozen(accelerator: Any, model: Any) -> Any:
    """The frozen full-fine-tuning reference: sharded like the policy under FSDP2 (the same units)."""
    if accelerator.is_fsdp2:
        # accelerate prepares one model per FSDP2 run (the one it saves); the reference shards the same way
        # but stays out of accelerate's checkpoints (it never changes, and is rebuilt from the base on resume)
        from accelerate.utils.fsdp_utils import fsdp2_prepare_model

        return fsdp2_prepare_model(accelerator, model)
    if accelerator.distributed_type.name == "DEEPSPEED":
        # accelerate saves every model it prepared as a DeepSpeed engine; the reference is no engine, so it
        # stays a whole copy on each device (not sharded: ZeRO-3 saves no memory on it)
        return model.to(accelerator.device)
    return accelerator.prepare_model(model, evaluation_mode=True)
