"""Reference log-probs shared by runs that feed the frozen reference the same batches, stored by content.

The reference is the frozen base model, so its output for a batch depends only on the base weights and the
batch's tensors. Runs that train on the same pairs with the same training seed and batch size see the very
same micro-batches whatever their learning rate: a study's learning-rate sweep trains 4 rates that way. The
first run computes each batch's reference log-probs and stores them; the others read them back.

The cache is per *batch*, not per pair: a pair's log-probs computed in another batch (other rows, other
padding) may differ in the last bits, and a stored value must be exactly what the forward would give, so a
run with the cache trains bit for bit as one without it. The key digests:

- the reference model: its weights' content fingerprint and the precision and training mode (LoRA's adapters
  off, or a frozen copy) it runs in, from ``bind`` (``harness.experiments.pipeline.train`` binds them);
- how the forward runs: packed prefixes or not, the parameters' dtype, the device type, the torch version and
  its CPU thread count (a reduction split over other threads may round differently);
- every tensor of the batch (token ids, masks, image tensors, token weights, shared-prefix flags) by its
  bytes, dtype and shape; never the pair ids or any path.

It is used only inside ``sharing(folder)`` (``harness study`` opens it around its learning-rate sweep); each
entry is one file, written to a temporary name and renamed, so an interrupted write leaves no half entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_folder: ContextVar[Path | None] = ContextVar("harness_reference_store", default=None)
_model: ContextVar[dict[str, Any] | None] = ContextVar("harness_reference_model", default=None)


@contextmanager
def sharing(folder: str | Path) -> Iterator[Path]:
    """Store and reuse the reference log-probs of every batch computed in this block under ``folder``."""
    token = _folder.set(Path(folder))
    try:
        yield Path(folder)
    finally:
        _folder.reset(token)


@contextmanager
def bind(**identity: Any) -> Iterator[None]:
    """Name the reference model of the trainings in this block by content (``weights``: its fingerprint, and
    what else decides its outputs: ``precision``, ``lora``). Without it nothing is stored or reused."""
    token = _model.set(dict(identity))
    try:
        yield
    finally:
        _model.reset(token)


def _tensor_digest(digest: Any, name: str, value: Any) -> None:
    import torch

    if isinstance(value, torch.Tensor):
        data = value.detach().cpu().contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)}\0".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    elif isinstance(value, dict):
        for key in sorted(value):
            _tensor_digest(digest, f"{name}.{key}", value[key])
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _tensor_digest(digest, f"{name}[{i}]", item)
    else:
        digest.update(f"{name}={json.dumps(value, default=str)}\0".encode())


def batch_key(identity: dict[str, Any], batch: Any, forward: dict[str, Any]) -> str:
    """The content key of one reference forward (see the module docstring)."""
    digest = hashlib.sha256(json.dumps({"model": identity, "forward": forward}, sort_keys=True,
                                       default=str).encode())
    for name, rows in batch.groups():
        for field in ("input_ids", "attention_mask", "response_mask", "images", "sequence", "prompt_lens",
                      "token_weights"):
            _tensor_digest(digest, f"{name}.{field}", getattr(rows, field, None))
    _tensor_digest(digest, "shared", batch.shared)
    _tensor_digest(digest, "pad", batch.pad_token_id)
    return digest.hexdigest()[:40]


def _forward_identity(reference: Any) -> dict[str, Any]:
    import torch

    parameter = next(iter(reference.model.parameters()), None)
    return {"pack": bool(reference.pack), "adapters_off": bool(reference.adapters_off),
            "dtype": str(parameter.dtype) if parameter is not None else None,
            "device": parameter.device.type if parameter is not None else None,
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def path_for(folder: Path, key: str) -> Path:
    return folder / key[:2] / f"{key}.pt"


def write_entry(path: Path, groups: dict[str, dict[str, Any]]) -> None:
    """``groups`` saved at ``path`` through a temporary file and a rename: never a half-written entry."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save({name: {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in values.items()}
                    for name, values in groups.items()}, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def lookup(reference: Any, batch: Any, compute: Callable[[Any], dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """``compute(batch)``, or the stored result of the same forward on the same batch (see the module docstring)."""
    folder, identity = _folder.get(), _model.get()
    if folder is None or identity is None:
        return compute(batch)
    import torch

    path = path_for(folder, batch_key(identity, batch, _forward_identity(reference)))
    if path.is_file():
        try:
            stored = torch.load(path, weights_only=True, map_location="cpu")
        except Exception as exc:  # unreadable (a disk error): recompute, and replace it below
            log.warning("reference store: cannot read %s (%s); computing it again", path.name, exc)
        else:
            device = batch.chosen.input_ids.device
            return {name: {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in values.items()}
                    for name, values in stored.items()}
    groups = compute(batch)
    write_entry(path, groups)
    return groups
