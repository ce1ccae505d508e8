"""The one training loop shared by every method, preference and supervised alike.

Per micro-batch: reference log-probs (frozen base, adapters off, or the disk cache), ONE policy forward
over chosen + rejected (+ extra) rows (stacked, or packed so a shared image + prompt prefix runs once:
``harness.training.logps``), ``method.loss(policy, reference, weights)`` giving
per-sample losses, and the batch loss

    loss = mean_i (w_i * loss_i)          (w_i = PreferencePair.weight: a curated pair's relevance weight, else 1)

divided by ``grad_accum``. Under DDP, FSDP2 and DeepSpeed (``harness.training.distributed``) the gradients
are averaged over processes, so one optimizer step minimizes the mean of ``w_i * loss_i`` over all
``batch_size * grad_accum * processes`` pairs.
"""

from __future__ import annotations

import gc
import logging
import math
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.io import atomic_dir, write_json, write_jsonl
from harness.curation.preferences import PreferencePair
from harness.methods.base import Method
from harness.training import checkpoint as ckpt
from harness.training import trackers
from harness.training.batch import Collator, PairDataset, PreferenceBatch
from harness.training.config import TrainConfig
from harness.training.distributed import (
    configure_deepspeed,
    is_sharded,
    make_accelerator,
    set_wrap_classes,
    shard_frozen,
)
from harness.training.encoding import RowEncoder
from harness.training.logps import (
    batch_shares_prefix,
    can_pack,
    packing_matches,
    prepare_packing,
    sequence_logps,
    to_logprobs,
)
from harness.training.reference import ModelReference, cache_key, load_or_build_cache
from harness.training.setup import build_optimizer, build_scheduler, prepare_model

log = logging.getLogger(__name__)
MAX_STEP_LINES = 50  # step lines per run with the default log_every (plus the first and the last step)


@dataclass
class TrainResult:
    output_dir: Path
    model_path: Path | None
    adapter_path: Path | None
    history: list[dict[str, float]] = field(default_factory=list)


def _check_model(model: Any) -> Any:
    """Training takes a loaded model (callers load it: ``harness.models.hf.load_hf_model``), never a path."""
    if isinstance(model, (str, Path)) or not hasattr(model, "processor") or not hasattr(model, "model"):
        raise HarnessError(f"training takes a loaded vision-language model (harness.models.hf.load_hf_model), "
                           f"got {type(model).__name__}")
    return model


def _select_pairs(method: Method, pairs: list[PreferencePair]) -> list[PreferencePair]:
    """The pairs the method trains on (``Method.trains_on``); the others are skipped with a warning."""
    chosen = [p for p in pairs if method.trains_on(p)]
    if len(chosen) < len(pairs):
        log.warning("method '%s' trains on %s pairs: %d of %d pairs of other kinds skipped",
                    method.name, "/".join(method.pair_kinds), len(pairs) - len(chosen), len(pairs))
    if not chosen:
        raise HarnessError(f"no pairs of kind {'/'.join(method.pair_kinds)} for method '{method.name}'")
    ids = [p.id for p in chosen]
    if len(set(ids)) != len(ids):
        raise HarnessError("pair ids must be unique (they key the reference cache and the data order)")
    return chosen


def _packing_sample(dataset: PairDataset, collate: Collator, size: int = 2):
    """A batch of the first pairs without a distinct rejected image (the ones that pack), two so that rows of
    different lengths exercise the padding; None if none pack."""
    text = [i for i, p in enumerate(dataset.pairs) if not p.rejected_image or p.rejected_image == p.image]
    batch = collate([dataset[i] for i in (text or range(len(dataset)))[:size]])
    return batch if batch_shares_prefix(batch) else None


def micro_batches(n: int, config: TrainConfig, world: int, rank: int, start: int, total: int):
    """The deterministic stream of micro-batch index lists from micro-batch ``start`` (for this process)."""
    import torch

    global_bs = config.batch_size * world
    per_epoch = micro_batches_per_epoch(n, config, world)
    for m in range(start, total):
        epoch, b = divmod(m, per_epoch)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed * 100003 + epoch)).tolist()
        chunk = order[b * global_bs:(b + 1) * global_bs]
        yield chunk[rank::world]


def log_interval(steps: int, every: int = 0) -> int:
    """Steps between step lines: ``every``, or with 0 (the default) the smallest interval that gives at most
    ``MAX_STEP_LINES`` lines besides the first and the last step."""
    return every if every > 0 else max(1, math.ceil(steps / MAX_STEP_LINES))


def logs_step(step: int, steps: int, every: int = 0) -> bool:
    """Whether optimizer step ``step`` (1-based) of ``steps`` gets a step line: the first, the last, and
    every ``log_interval`` steps."""
    return step == 1 or step == steps or step % log_interval(steps, every) == 0


def micro_batches_per_epoch(n: int, config: TrainConfig, world: int) -> int:
    """Micro-batches in one pass over ``n`` pairs (a last partial batch is dropped under several processes)."""
    global_bs = config.batch_size * world
    return max(n // global_bs if world > 1 else math.ceil(n / global_bs), 1)


def total_steps(n: int, config: TrainConfig, world: int) -> int:
    if config.max_steps:
        return config.max_steps
    return max(1, math.ceil(config.epochs * micro_batches_per_epoch(n, config, world) / config.grad_accum))


@dataclass
class Run:
    """One training run after set-up: what ``train_step`` needs, and what the loop around it reports."""

    method: Method
    config: TrainConfig
    vlm: Any
    accelerator: Any
    model: Any
    optimizer: Any
    scheduler: Any
    reference: Any  # None (reference-free), ModelReference or CachedReference
    dataset: PairDataset
    collate: Collator
    pack: bool
    steps: int
    output_dir: Path
    last_good: Path | None = None  # the last checkpoint written or resumed from
    # the weights that get gradients, which clipping walks instead of every weight of the model; empty (all
    # weights) when sharded: accelerate's FSDP2 clipping needs the model's own parameters to reduce the norm
    # over the shards (a clean-clone run of tests/training/test_sharded.py saw a different grad_norm)
    trainable: list[Any] = field(default_factory=list)

    def loader(self, batches: Any) -> Any:
        """A data loader over the given micro-batch index lists."""
        import torch

        return torch.utils.data.DataLoader(self.dataset, batch_sampler=list(batches), collate_fn=self.collate,
                                           num_workers=self.config.num_workers,
                                           # its own generator: iterating must not move the global RNG
                                           # (dropout), or a resumed run would diverge
                                           generator=torch.Generator().manual_seed(self.config.seed))

    @property
    def per_epoch(self) -> int:
        return micro_batches_per_epoch(len(self.dataset), self.config, self.accelerator.num_processes)


def setup_run(model: Any, method: Method, pairs: list[PreferencePair], image_root: Path | None,
              output_dir: Path, config: TrainConfig) -> Run:
    """Pairs, data, the model to train, its optimizer and schedule, and the reference (built, or read from
    the cache): everything before the first step. The order is fixed: it fixes what the seeded RNG draws."""
    from accelerate.utils import set_seed

    pairs = _select_pairs(method, pairs)
    accelerator = make_accelerator(
        mixed_precision="bf16" if config.precision == "bf16" else "no",
        log_with=None if config.report_to == "none" else config.report_to,
        project_dir=str(output_dir),
    )
    configure_deepspeed(accelerator, config.batch_size, config.grad_accum, config.max_grad_norm)
    set_seed(config.seed)
    vlm = _check_model(model)
    encoder = RowEncoder(vlm.processor, vlm.format_prompt, config.max_length)
    dataset = PairDataset(pairs, image_root, encoder, with_rejected=method.paired,
                          extra_rows=tuple(method.extra_rows), corrupt_image=method.corrupt_image,
                          seed=config.seed, token_weights=method.token_weights)
    dataset.check_images(str(image_root or "pairs"))
    pad = vlm.tokenizer.pad_token_id if vlm.tokenizer.pad_token_id is not None else vlm.tokenizer.eos_token_id
    collate = Collator(pad)

    base_config = vlm.model.config.to_dict()
    model = prepare_model(vlm.model, vlm.family, config)
    frozen = None
    if not method.reference_free and not config.lora and not config.ref_cache:
        import copy

        frozen = copy.deepcopy(accelerator.unwrap_model(model)).requires_grad_(False).eval()
    # the multi-tensor update in one process (sharded weights keep torch's default)
    optimizer = build_optimizer(model, vlm.family, config, foreach=True if accelerator.num_processes == 1 else None)
    steps = total_steps(len(dataset), config, accelerator.num_processes)
    scheduler = build_scheduler(optimizer, config, steps)
    pack = config.share_prefix and can_pack(vlm.model, vlm.family)
    if config.share_prefix and not pack:
        log.info("prefix sharing off: the %s family or its attention implementation does not take packed rows",
                 vlm.family.name)
    set_wrap_classes(accelerator, model)
    model, optimizer = accelerator.prepare(model, optimizer)
    if frozen is not None:
        frozen = shard_frozen(accelerator, frozen)
    if pack:
        def sample() -> PreferenceBatch | None:  # built only when no verdict is kept (packing_matches)
            batch = _packing_sample(dataset, collate)
            return batch.to(accelerator.device) if batch is not None else None

        with accelerator.autocast():
            pack = packing_matches(model, sample)
    run = Run(method, config, vlm, accelerator, model, optimizer, scheduler, None, dataset, collate, pack,
              steps, output_dir,
              trainable=[p for p in model.parameters() if p.requires_grad] if accelerator.num_processes == 1 else [])
    if not method.reference_free:
        run.reference = ModelReference(frozen if frozen is not None else model, adapters_off=frozen is None,
                                       autocast=accelerator.autocast, pack=pack)
        if config.ref_cache:
            key = cache_key(_weights_id(vlm), base_config, pairs,
                            {"max_length": config.max_length, "precision": config.precision,
                             "rows": dataset.row_names})
            ordered = [list(range(i, min(i + config.batch_size, len(dataset))))
                       for i in range(0, len(dataset), config.batch_size)]
            run.reference = load_or_build_cache(Path(config.ref_cache) / f"ref-{key}.pt", run.reference,
                                                run.loader(ordered), accelerator)
    return run


def train_step(run: Run, batches: Any, step: int) -> dict[str, float]:
    """One optimizer step (0-based ``step``) over ``grad_accum`` micro-batches drawn from ``batches``: per
    micro-batch the reference and ONE policy forward, ``method.loss`` and backward; then clipping, the
    optimizer and the schedule. Returns the step's metrics (means over its micro-batches)."""
    accelerator, model, method = run.accelerator, run.model, run.method
    ga = run.config.grad_accum
    sums: dict[str, float] = {}
    for micro in range(ga):
        batch = next(batches).to(accelerator.device)
        sync = micro == ga - 1
        with accelerator.no_sync(model) if not sync else nullcontext():
            with accelerator.autocast():
                ref = run.reference(batch) if run.reference is not None else None
                policy = to_logprobs(sequence_logps(model, batch, pack=run.pack))
                out = method.loss(policy, ref, batch.weights)
                loss = (batch.weights * out.losses).mean()
            value = float(accelerator.gather(loss.detach().reshape(1)).float().mean())
            if not math.isfinite(value):
                where = run.last_good.name if run.last_good is not None else "none (no checkpoint was saved yet)"
                raise HarnessError(f"training stopped: the loss is {value} at step {step + 1} "
                                   f"(micro-batch {micro + 1}); last good checkpoint: {where}")
            accelerator.backward(loss / ga)
        _accumulate(sums, value, out, policy, accelerator.gather, paired=method.paired)
    grad_norm = None
    if run.config.max_grad_norm > 0:
        grad_norm = accelerator.clip_grad_norm_(run.trainable or run.model.parameters(), run.config.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    metrics = {k: v / ga for k, v in sums.items()} | {"learning_rate": run.scheduler.get_last_lr()[0]}
    if grad_norm is not None:  # the norm before clipping, as TRL logs it; DeepSpeed may not report one
        # under FSDP2 the norm may be a DTensor: its full value, the same on every process
        metrics["grad_norm"] = float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm)
    return metrics | {"epoch": (step + 1) * ga / run.per_epoch, "step": step + 1}


def _resume(run: Run, resume: bool) -> tuple[int, list[dict[str, float]]]:
    """The step to start from and the history so far: from the last checkpoint under ``--resume``."""
    output_dir = run.output_dir
    run.last_good = ckpt.latest_checkpoint(output_dir) if resume else None
    if resume and run.last_good is None:
        log.warning("--resume: no checkpoint in %s, starting from step 0", output_dir)
    if run.last_good is not None:
        state = ckpt.load_checkpoint(run.last_good, accelerator=run.accelerator, model=run.model,
                                     optimizer=run.optimizer, scheduler=run.scheduler)
        start_step, history = int(state["step"]), list(state.get("history", []))
        log.info("resumed from %s (step %d of %d)", run.last_good.name, start_step, run.steps)
        return start_step, history
    if not resume and ckpt.checkpoint_dirs(output_dir):
        raise HarnessError(f"{output_dir} already holds checkpoints: pass --resume to continue, or a new --output-dir")
    return 0, []


def _start_records(run: Run, pairs: int) -> None:
    """``train_config.json`` and the tracker run (a resumed training reopens the one it started)."""
    config, accelerator, method = run.config, run.accelerator, run.method
    if accelerator.is_main_process:
        write_json(run.output_dir / "train_config.json",
                   {"method": method.name, "hparams": method.hparams, "config": config.to_dict(),
                    "pairs": pairs, "total_steps": run.steps})
    if config.report_to != "none":
        accelerator.init_trackers(config.run_name, config={**config.to_dict(), "method": method.name},
                                  init_kwargs=trackers.init_kwargs(config.report_to, run.output_dir))
        if accelerator.is_main_process:
            trackers.remember(accelerator, config.report_to, config.run_name, run.output_dir)


def _prefetch_pays(device: Any) -> bool:
    """Whether to run the data path on the prefetch thread: beside a GPU, not on the CPU.

    On the CPU the thread's data path (Python, holding the GIL) slows the step more than it saves. Measured
    on 2 idle cores, the training benchmark's 16-step core run (median of 5, each way in one process): with 2
    torch threads 0.52 s with the thread against 0.31 s without (the thread preempts one of torch's
    intra-op threads and stalls every parallel operator); with 1 torch thread, leaving a core free, 0.39 s
    against 0.34 s. Beside a GPU the step's Python mostly waits on the device; not measured here (no GPU).
    """
    import torch

    return torch.device(device).type != "cpu"


class Prefetch:
    """Iterates ``batches`` one batch ahead on a background thread: the next micro-batch's data path
    (images, processor, padding, the packed layout) runs while the current step computes. Errors of the data
    path (a bad image: ``DataError``) are raised where the batch is asked for, as without it."""

    def __init__(self, batches: Any):
        from concurrent.futures import ThreadPoolExecutor

        self._batches = batches
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="harness-data")
        self._next = self._pool.submit(next, batches)

    def __iter__(self) -> Prefetch:
        return self

    def __next__(self) -> Any:
        batch = self._next.result()
        self._next = self._pool.submit(next, self._batches)
        return batch

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def train_preference(model: Any, method: Method, pairs: list[PreferencePair],
                     image_root: Path | None, output_dir: str | Path, config: TrainConfig | None = None,
                     *, resume: bool = False) -> TrainResult:
    """Train ``method`` on ``pairs``; see the module docstring for the exact loss.

    Set-up (``setup_run``), resume, then ``train_step`` once per optimizer step, with the step lines,
    trackers and checkpoints around it; the final checkpoint and model at the end."""
    from tqdm.auto import tqdm

    config = config or TrainConfig()
    output_dir = Path(output_dir)
    image_root = Path(image_root) if image_root is not None else None
    run = setup_run(model, method, pairs, image_root, output_dir, config)
    accelerator, steps = run.accelerator, run.steps
    start_step, history = _resume(run, resume)
    _start_records(run, len(run.dataset))

    run.model.train()
    ga = config.grad_accum
    stream = micro_batches(len(run.dataset), config, accelerator.num_processes, accelerator.process_index,
                           start_step * ga, steps * ga)
    batches = iter(run.loader(stream))
    if run.pack:  # the packed layout is part of the data path (on the prefetch thread below)
        dtype = next(p.dtype for p in run.model.parameters())
        batches = (prepare_packing(batch, dtype, accelerator.device) for batch in batches)
    if config.num_workers == 0 and _prefetch_pays(accelerator.device):  # worker processes prefetch already
        batches = Prefetch(batches)
    progress = tqdm(total=steps, initial=start_step, desc=f"train {method.name}",
                    disable=not accelerator.is_main_process)
    # The objects alive now (the libraries, the model's modules) are left out of the garbage collector's scans
    # while the steps run: a full collection over them took ~0.2 s on the tiny model's process, at random
    # steps; the steps' own garbage is still collected. Back to normal after (gc.unfreeze).
    gc.freeze()
    try:
        for step in range(start_step, steps):
            metrics = train_step(run, batches, step)
            history.append(metrics)
            # refresh=False: the update redraws, at most once per mininterval (30 s in a log, harness.cli)
            progress.set_postfix(loss=f"{metrics['loss']:.4f}",
                                 acc=f"{metrics.get('rewards/accuracies', 0):.2f}", refresh=False)
            progress.update(1)
            if logs_step(step + 1, steps, config.log_every) and accelerator.is_main_process:
                log.info("step %d/%d %s", step + 1, steps,
                         " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k != "step"))
                if config.report_to != "none":
                    accelerator.log({f"train/{k}": v for k, v in metrics.items() if k != "step"}, step=step + 1)
            if config.save_every and (step + 1) % config.save_every == 0 and step + 1 < steps:
                run.last_good = ckpt.save_checkpoint(output_dir, step + 1, accelerator=accelerator,
                                                     model=run.model, optimizer=run.optimizer,
                                                     scheduler=run.scheduler, state={"history": history},
                                                     keep=config.save_total_limit)
    finally:
        gc.unfreeze()
        if isinstance(batches, Prefetch):
            batches.close()
    progress.close()
    if config.report_to != "none":
        accelerator.end_training()
    ckpt.save_checkpoint(output_dir, steps, accelerator=accelerator, model=run.model, optimizer=run.optimizer,
                         scheduler=run.scheduler, state={"history": history}, keep=config.save_total_limit)
    model_path, adapter_path = save_final(output_dir, accelerator, run.model, run.vlm, config)
    if accelerator.is_main_process:
        write_jsonl(output_dir / "metrics.jsonl", history)
    return TrainResult(output_dir, model_path, adapter_path, history)


def _accumulate(sums: dict[str, float], loss: float, out: Any, policy: Any, gather: Any, *, paired: bool) -> None:
    """Add one micro-batch's metrics over every process's pairs (``gather``: ``accelerator.gather``; each
    process holds the same number of pairs, so a mean of per-process means is the mean over all pairs).

    The names are TRL's (docs/training.md, "Trackers"); ``logps/*`` are the policy's summed
    response log-probabilities, ``logps/rejected`` only when the rows have a rejected side (``paired``)."""
    chosen, rejected = gather(out.chosen_rewards.detach().float()), gather(out.rejected_rewards.detach().float())
    values = {
        "loss": loss,
        "rewards/chosen": float(chosen.mean()),
        "rewards/rejected": float(rejected.mean()),
        "rewards/accuracies": float((chosen > rejected).float().mean()),
        "rewards/margins": float((chosen - rejected).mean()),
        "logps/chosen": float(gather(policy.chosen_logps.detach().float()).mean()),
    }
    if paired:
        values["logps/rejected"] = float(gather(policy.rejected_logps.detach().float()).mean())
    for key, value in out.metrics.items():
        values[key] = float(gather(value.detach().float().mean().reshape(1)).mean())
    for key, value in values.items():
        sums[key] = sums.get(key, 0.0) + value


def save_final(output_dir: Path, accelerator: Any, model: Any, vlm: Any, config: TrainConfig):
    """Write ``adapter/`` (LoRA) and ``model/`` (full, merged under LoRA) + processor; each atomically."""
    accelerator.wait_for_everyone()
    state = accelerator.get_state_dict(model)
    if not accelerator.is_main_process:
        return None, None
    unwrapped = accelerator.unwrap_model(model)
    if is_sharded(accelerator):
        _drop_tied_copies(unwrapped, state)
    adapter_path = model_path = None
    if config.lora:
        adapter_path = atomic_dir(output_dir / "adapter", lambda d: unwrapped.save_pretrained(d, state_dict=state))
        if config.merge_lora:
            merged = (_merged_from_state(unwrapped, state) if is_sharded(accelerator)
                      else unwrapped.merge_and_unload())
            model_path = atomic_dir(output_dir / "model", lambda d: (merged.save_pretrained(d),
                                                                      vlm.processor.save_pretrained(d)))
    else:
        model_path = atomic_dir(output_dir / "model", lambda d: (unwrapped.save_pretrained(d, state_dict=state),
                                                                  vlm.processor.save_pretrained(d)))
    return model_path, adapter_path


def _drop_tied_copies(model: Any, state: dict[str, Any]) -> None:
    """A gathered state dict holds a tied weight (lm_head = embed_tokens) twice, as separate tensors, so
    ``save_pretrained`` cannot see the tie and saves both; keep the first name, as an unsharded save does."""
    seen: set[int] = set()
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in seen:
            state.pop(name, None)
        seen.add(id(param))


@contextmanager
def _outside_zero3():
    """Build a model as if DeepSpeed ZeRO-3 were off: under ZeRO-3 transformers builds every model inside
    ``deepspeed.zero.Init``, whose collectives would wait for the other processes, and the merged copy is
    the main process's alone (transformers' own switch, ``unset_hf_deepspeed_config``, restored after)."""
    try:
        from transformers.integrations import deepspeed as hf_deepspeed
    except ImportError:
        yield
        return
    saved = getattr(hf_deepspeed, "_hf_deepspeed_config_weak_ref", None)
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = saved


def _original_class(module: Any) -> type:
    """The model's own class: FSDP2 turns a module's class into a subclass of ``FSDPModule`` and it."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:
        return type(module)
    return next(c for c in type(module).__mro__ if not issubclass(c, FSDPModule))


def _merged_from_state(peft_model: Any, state: dict[str, Any]) -> Any:
    """The LoRA-merged model when the trained model is sharded (FSDP, DeepSpeed ZeRO-3).

    The sharded model's own weights are shards (merging them on one process would need the others), so
    the merge happens on a copy built on the meta device and filled with the gathered full state dict.
    """
    import torch
    from peft import get_peft_model

    base = peft_model.get_base_model()
    with _outside_zero3(), torch.device("meta"):
        fresh = get_peft_model(_original_class(base)(base.config), peft_model.peft_config[peft_model.active_adapter])
    _, unexpected = fresh.load_state_dict(state, strict=False, assign=True)
    if hasattr(fresh, "tie_weights"):
        fresh.tie_weights()
    missing = [name for name, p in fresh.named_parameters() if p.is_meta]
    if unexpected or missing:
        raise HarnessError(f"cannot merge the LoRA adapter from the gathered weights: missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]}")
    buffers = dict(peft_model.named_buffers())
    for name, buffer in fresh.named_buffers():  # non-persistent buffers (rotary tables) are not in a state dict
        if buffer.is_meta:
            module, _, attr = name.rpartition(".")
            fresh.get_submodule(module).register_buffer(attr, buffers[name].detach().cpu().clone(), persistent=False)
    return fresh.merge_and_unload()


def _weights_id(vlm: Any) -> str:
    """The base weights' content fingerprint (the reference cache's model key); a model without one (a test
    double) is hashed from its loaded parameters."""
    if hasattr(vlm, "fingerprint"):
        return vlm.fingerprint()
    from harness.models.fingerprint import module_fingerprint

    return module_fingerprint(vlm.model)
