"""Reference log-probabilities: the frozen base model, by one of three routes.

* LoRA: the policy itself with its adapters disabled (``peft``'s ``disable_adapter``): no second copy.
* Full fine-tuning: a frozen copy of the base, made before the first step.
* A cache on disk (``ref_cache``): computed once over all pairs, keyed by the pairs, the model and the
  encoding options, and reused by later runs (and by resume) without any reference forward.
"""

from __future__ import annotations

import hashlib
import json
import logging
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from harness.core.timing import stage
from harness.methods.base import LogProbs
from harness.training import refstore
from harness.training.batch import PreferenceBatch
from harness.training.logps import sequence_logps, to_logprobs
from harness.training.modes import evaluating

log = logging.getLogger(__name__)
CACHED_FIELDS = ("sum", "mean", "tokens")


class ModelReference:
    """Reference forward through a module; ``adapters_off`` disables peft adapters around it.

    ``pack``: the forward may pack shared prefixes (``harness.training.logps.sequence_logps``).
    """

    def __init__(self, model: Any, *, adapters_off: bool, autocast: Any = None, pack: bool = False):
        self.model = model
        self.adapters_off = adapters_off
        self.autocast = autocast or nullcontext
        self.pack = pack
        self._adapter_layers: tuple[list[Any], list[Any]] | None = None

    def groups(self, batch: PreferenceBatch) -> dict[str, dict[str, Any]]:
        with stage("reference"):  # read back when a study shares them (harness.training.refstore)
            return refstore.lookup(self, batch, self._forward)

    def _forward(self, batch: PreferenceBatch) -> dict[str, dict[str, Any]]:
        import torch

        context = self._adapters_disabled() if self.adapters_off else nullcontext()
        # evaluating: no dropout in the reference (eval mode, the model's own mode restored after)
        with torch.no_grad(), evaluating(self.model), context, self.autocast():
            return sequence_logps(self.model, batch, pack=self.pack)

    @contextmanager
    def _adapters_disabled(self):
        """peft's ``disable_adapter()`` for LoRA, without its per-call model walk and status report.

        The adapter layers (and ``modules_to_save`` wrappers) are found once; each step only flips them.
        peft's context manager calls ``enable_adapters`` on every one, which sets the flag the forward reads
        (``_disable_adapters``) and also turns the adapters' ``requires_grad`` off and back on; under the
        reference's ``no_grad`` only the flag matters, so layers whose ``enable_adapters`` is peft's own get
        the flag alone (most of the switch's cost was the ``requires_grad`` walk), the others their method.
        """
        peft_model = _unwrap(self.model)
        if self._adapter_layers is None:
            self._adapter_layers = _adapter_layers(peft_model)
        if not any(self._adapter_layers):  # not a LoRA-style peft model: peft's own context
            with peft_model.disable_adapter():
                yield
            return
        flags, others = self._adapter_layers
        for layer in flags:
            layer._disable_adapters = True
        for layer in others:
            layer.enable_adapters(False)
        try:
            yield
        finally:
            for layer in flags:
                layer._disable_adapters = False
            for layer in others:
                layer.enable_adapters(True)

    def __call__(self, batch: PreferenceBatch) -> LogProbs:
        return to_logprobs(self.groups(batch))


class CachedReference:
    """Looks reference log-probs up by pair id (token-level log-probs are not cached)."""

    def __init__(self, table: dict[str, dict[str, dict[str, float]]]):
        self.table = table

    def __call__(self, batch: PreferenceBatch) -> LogProbs:
        import torch

        groups: dict[str, dict[str, Any]] = {}
        for name, _ in batch.groups():
            groups[name] = {
                key: torch.tensor([self.table[pid][name][key] for pid in batch.ids], device=batch.weights.device)
                for key in CACHED_FIELDS
            }
        return to_logprobs(groups)


def _unwrap(model: Any) -> Any:
    return getattr(model, "module", model)


def _adapter_layers(peft_model: Any) -> tuple[list[Any], list[Any]]:
    """The modules peft's ``disable_adapter`` toggles, for LoRA-style adapters, as (layers whose switch is
    peft's ``BaseTunerLayer.enable_adapters``: the flag alone is flipped, the other modules); ([], []) for
    anything else."""
    try:
        from peft.tuners.tuners_utils import BaseTunerLayer
        from peft.utils.other import AuxiliaryTrainingWrapper
    except ImportError:
        return []
    config = getattr(peft_model, "peft_config", {}).get(getattr(peft_model, "active_adapter", None))
    if config is None or config.is_prompt_learning or config.is_adaption_prompt:
        return [], []
    layers = [m for m in peft_model.modules() if isinstance(m, (BaseTunerLayer, AuxiliaryTrainingWrapper))]
    flags = [m for m in layers if type(m).enable_adapters is BaseTunerLayer.enable_adapters
             and isinstance(getattr(m, "_disable_adapters", None), bool)]
    flipped = {id(m) for m in flags}
    return flags, [m for m in layers if id(m) not in flipped]


def cache_key(model_id: str, model_config: dict, pairs: list, encoding: dict) -> str:
    """The reference cache's key, by content: ``model_id`` is the weights' fingerprint
    (``harness.models.fingerprint``), and each pair counts with its text and its images' bytes, so new weights
    or an image replaced under the same path never reuse stale log-probabilities."""
    from harness.models.fingerprint import file_digest

    digest = hashlib.sha256()
    digest.update(json.dumps({"model": model_id, "config": model_config, "encoding": encoding},
                             sort_keys=True, default=str).encode())
    for pair in pairs:
        digest.update(json.dumps(pair.as_dict(), sort_keys=True, default=str).encode())
        for image in (pair.image, getattr(pair, "rejected_image", None)):
            if isinstance(image, str) and Path(image).is_file():
                digest.update(file_digest(image).encode())
    return digest.hexdigest()[:24]


def load_or_build_cache(path: Path, reference: ModelReference, loader: Any, accelerator: Any) -> CachedReference:
    """Read ``path`` if it exists, else run the reference over ``loader`` once and write it atomically."""
    import torch
    from tqdm.auto import tqdm

    if path.is_file():
        log.info("reference log-probs from cache %s", path.name)
        return CachedReference(torch.load(path, weights_only=True))
    table: dict[str, dict[str, dict[str, float]]] = {}
    for batch in tqdm(loader, desc="reference log-probs", disable=not accelerator.is_main_process):
        groups = reference.groups(batch.to(accelerator.device))
        for i, pid in enumerate(batch.ids):
            table[pid] = {name: {k: float(v[k][i]) for k in CACHED_FIELDS} for name, v in groups.items()}
    if accelerator.is_main_process:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(table, tmp)
        tmp.replace(path)
        log.info("reference log-probs cached for %d pairs in %s", len(table), path.name)
    accelerator.wait_for_everyone()
    return CachedReference(table)
