"""Which weights train: LoRA on the language model (peft) or full fine-tuning; optimizer and schedule.

LoRA targets default to the family's language-model linear layers (``Family.lora_target_modules``).
With ``train_projector`` the projector is a peft ``modules_to_save`` module, so disabling the adapters
(the reference model) also restores the original projector. Full fine-tuning trains everything except
the vision encoder (modules named ``vision*``/``visual``) and, unless asked, the projector.
"""

from __future__ import annotations

import logging
from typing import Any

from harness.training.config import TrainConfig

log = logging.getLogger(__name__)

VISION_PREFIXES = ("vision", "visual")


def _is_projector(name: str, family: Any) -> bool:
    return any(part in family.projector_modules for part in name.split("."))


def _is_vision(name: str) -> bool:
    return any(part.startswith(VISION_PREFIXES) for part in name.split("."))


def prepare_model(model: Any, family: Any, config: TrainConfig) -> Any:
    """Freeze / wrap ``model`` for training and return the module to optimize."""
    model.config.use_cache = False
    if config.lora:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=config.lora_target or family.lora_target_modules,
            modules_to_save=list(family.projector_modules) if config.train_projector else None,
        )
        model = get_peft_model(model, lora)
    else:
        for name, param in model.named_parameters():
            param.requires_grad = not _is_vision(name) and (config.train_projector or not _is_projector(name, family))
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info("training %d of %d parameters (%.2f%%)", trainable, total, 100.0 * trainable / max(total, 1))
    return model


def build_optimizer(model: Any, family: Any, config: TrainConfig, *, foreach: bool | None = None):
    """AdamW over the trainable weights (the projector's at ``projector_lr``). ``foreach``: torch's
    multi-tensor update (its default on GPUs; on CPUs one Python loop per weight otherwise, and the same
    numbers either way)."""
    import torch

    main, projector = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (projector if _is_projector(name, family) else main).append(param)
    groups = [{"params": main, "lr": config.lr}]
    if projector:
        groups.append({"params": projector, "lr": config.projector_lr or config.lr})
    groups = [g for g in groups if g["params"]]
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay, foreach=foreach)


def build_scheduler(optimizer: Any, config: TrainConfig, total_steps: int):
    from transformers import get_scheduler

    name = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[config.schedule]
    warmup = int(round(config.warmup_ratio * total_steps))
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)
