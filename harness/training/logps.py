"""Sequence log-probabilities from ONE forward over all row groups of a batch.

Two layouts, giving the same numbers (to float rounding):

* ``concatenated_forward``: the rows of every group stacked, ``[chosen; rejected; extra...]``.
* ``packed_forward`` (prefix sharing): a text pair shows the same image and prompt on both sides, so its
  chosen and rejected rows begin with the same prefix (hundreds of image tokens for LLaVA). One packed row
  ``[prefix, chosen response, rejected response]`` runs that prefix once: a 4-D attention mask lets each
  response see the prefix and itself but not the other response, and position ids restart each response
  right after the prefix, so every response token sees exactly what it sees in its own row. Rows that do
  not share a prefix (a visual pair's noised image) stay ordinary rows in the same forward. This is the
  prefix sharing of Wang et al., 2024 (arXiv 2410.20305) applied to image + prompt prefixes.

``sequence_logps`` picks the packed layout when the model family supports custom 4-D masks and some row
of the batch shares a prefix. In both, logits are only computed where they are needed (``logits_to_keep``
from the earliest response position), and per-token log-probs are ``-cross_entropy`` in float32 (no full
``log_softmax`` tensor kept for backward).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.methods.base import LogProbs
from harness.training.batch import PreferenceBatch

log = logging.getLogger(__name__)

# attention implementations that honour a custom 4-D additive mask
PACKABLE_ATTENTION = ("eager", "sdpa")
# mean per-token disagreement (nats) between packed and stacked rows above which packing is taken as broken
PACKING_TOLERANCE = {"float32": 1e-3, "other": 3e-2}
# per process: (model type, attention implementation, dtype) -> whether packed rows matched stacked rows
_PACKING_CHECKED: dict[tuple[str, str, str], bool] = {}


def can_pack(model: Any, family: Any) -> bool:
    """Whether ``packed_forward`` applies to this (possibly peft-wrapped) model of this family."""
    config = getattr(model, "config", None)
    implementation = getattr(config, "_attn_implementation", None) or "eager"
    return bool(getattr(family, "packs_prefix", False)) and implementation in PACKABLE_ATTENTION


def sequence_logps(model: Any, batch: PreferenceBatch, *, pack: bool = False) -> dict[str, dict[str, Any]]:
    """Per-group log-probs (see ``concatenated_forward``), packed when ``pack`` and some prefix is shared."""
    if pack and batch_shares_prefix(batch):
        return packed_forward(model, batch)
    return concatenated_forward(model, batch)


def prepare_packing(batch: PreferenceBatch, dtype: Any, device: Any) -> PreferenceBatch:
    """Compute ``batch``'s packed layout (and, on the CPU, its attention mask) ahead of its forwards.

    The training loop calls it in the data path, so with the prefetch thread the layout (a Python loop over
    the batch's tokens, ~2 ms for 4 pairs) is built beside the previous step instead of inside this one.
    ``packed_forward`` uses what it finds in ``batch.cache`` and builds what is missing.
    """
    import torch

    if batch_shares_prefix(batch) and "packed" not in batch.cache:
        layout = batch.cache["packed"] = pack_layout(batch)
        if torch.device(device).type == "cpu":
            batch.cache[("mask", dtype)] = layout.attention_mask(dtype, torch.device("cpu"))
    return batch


def packing_matches(model: Any, batch: PreferenceBatch | Callable[[], PreferenceBatch | None]) -> bool:
    """Once per kind of model: do packed rows give the stacked rows' log-probs on ``batch``?

    Packing relies on the model honouring a custom 4-D mask and explicit position ids. A transformers
    version that handled either differently would silently change every log-prob, so one batch that packs
    runs both ways (no grad, eval mode) before training, and packing is refused if they disagree by more
    than ``PACKING_TOLERANCE`` nats per token.

    The verdict depends on the libraries, the architecture and this module's code, not on the weights or the
    data, so it is kept per process and on disk (``HARNESS_HOME/cache/packing/``, keyed by the torch,
    transformers and peft versions, the model's config without its path, the attention implementation, the
    dtype and the source of the functions compared): a later run on the same stack reads it instead of
    running both forwards again. ``batch`` may be a function giving the batch (or None: nothing packs, no
    verdict), called only when the check runs.
    """
    import torch

    config = getattr(getattr(model, "module", model), "config", None)
    dtype = next(p.dtype for p in model.parameters())
    key = (str(getattr(config, "model_type", type(model).__name__)),
           str(getattr(config, "_attn_implementation", "")), str(dtype))
    if key not in _PACKING_CHECKED:
        verdict = _verdict_path(config, key)
        stored = _stored_verdict(verdict)
        if stored is not None:
            _PACKING_CHECKED[key] = stored
            return stored
        if callable(batch):
            batch = batch()
            if batch is None:
                return True
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                stacked = concatenated_forward(model, batch)
                packed = packed_forward(model, batch)
        finally:
            model.train(was_training)
        worst = max(float(((packed[g]["sum"] - stacked[g]["sum"]).abs() / stacked[g]["tokens"].clamp(min=1)).max())
                    for g in stacked)
        tolerance = PACKING_TOLERANCE["float32" if dtype == torch.float32 else "other"]
        _PACKING_CHECKED[key] = worst <= tolerance
        _store_verdict(verdict, key, worst <= tolerance, worst)
        if worst > tolerance:
            log.warning("prefix sharing off: packed rows differ from stacked rows by up to %.3g nats per token "
                        "(tolerance %g) on a %s model; this transformers version may treat 4-D attention masks "
                        "differently", worst, tolerance, key[0])
    return _PACKING_CHECKED[key]


@functools.cache
def _module_source() -> str:
    import hashlib

    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def _verdict_path(config: Any, key: tuple[str, str, str]) -> Path:
    import hashlib
    import json

    import peft
    import torch
    import transformers

    from harness.core.paths import harness_home

    settings = config.to_dict() if hasattr(config, "to_dict") else {}
    settings.pop("_name_or_path", None)
    # this module's source, and the functions compared as they are now looked up (a replaced packed_forward,
    # a test's broken one, is another verdict)
    code = [_module_source()] + [f"{f.__module__}.{f.__qualname__}:{f.__code__.co_code.hex()}"
                                 for f in (pack_layout, packed_forward, concatenated_forward)]
    digest = hashlib.sha256(json.dumps(
        {"key": key, "config": settings, "code": code, "torch": torch.__version__,
         "transformers": transformers.__version__, "peft": peft.__version__},
        sort_keys=True, default=str).encode()).hexdigest()[:24]
    return harness_home() / "cache" / "packing" / f"{digest}.json"


def _stored_verdict(path: Path) -> bool | None:
    import json

    try:
        return bool(json.loads(path.read_text())["packs"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or unreadable: check again


def _store_verdict(path: Path, key: tuple[str, str, str], packs: bool, worst: float) -> None:
    from harness.core.io import write_json

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {"packs": packs, "worst_nats_per_token": worst, "model_type": key[0],
                          "attention": key[1], "dtype": key[2]})
    except OSError as exc:  # a read-only home: the check runs again next time
        log.debug("could not keep the packing verdict: %s", exc)


def batch_shares_prefix(batch: PreferenceBatch) -> bool:
    if any(rows.sequence for _, rows in batch.groups()):
        return False  # sequence-aligned extras (token types) have no packed form here
    return any(bool(flags.any()) for flags in batch.shared.values())


def concatenated_forward(model: Any, batch: PreferenceBatch) -> dict[str, dict[str, Any]]:
    """Per group (``chosen``, ``rejected``, extras): ``sum``, ``mean``, ``tokens``, ``token_logps``.

    Groups whose rows carry per-token weights (``Rows.token_weights``) also get ``token_weights``, cut to
    the same window as ``token_logps`` so the two align position by position.
    """
    import torch
    import torch.nn.functional as F

    groups = batch.groups()
    sizes = [rows.input_ids.shape[0] for _, rows in groups]
    input_ids = torch.cat([rows.input_ids for _, rows in groups])
    attention = torch.cat([rows.attention_mask for _, rows in groups])
    response = torch.cat([rows.response_mask for _, rows in groups])
    kwargs: dict[str, Any] = {}
    for key in groups[0][1].images:
        kwargs[key] = torch.cat([rows.images[key] for _, rows in groups])
    for key in groups[0][1].sequence:
        kwargs[key] = torch.cat([rows.sequence[key] for _, rows in groups])
    if "pixel_values" in kwargs and torch.is_floating_point(kwargs["pixel_values"]):
        dtype = next(p.dtype for p in model.parameters())
        kwargs["pixel_values"] = kwargs["pixel_values"].to(dtype)

    length = input_ids.shape[1]
    first = _first_response(groups)
    keep = length - first + 1  # logits at positions first-1 .. length-1
    out = model(input_ids=input_ids, attention_mask=attention, logits_to_keep=keep, use_cache=False, **kwargs)
    logits = out.logits[:, :-1]
    labels = input_ids[:, first:]
    mask = response[:, first:]
    token_logps = -F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none"
    ).view(labels.shape)
    return _split(groups, sizes, token_logps, mask, first)


def _first_response(groups: list[tuple[str, Any]]) -> int:
    """The earliest response position over all rows of all groups (the start of the scored window)."""
    return min(int(rows.response_mask.float().argmax(dim=1).min()) for _, rows in groups)


def _split(groups: list[tuple[str, Any]], sizes: list[int], token_logps: Any, mask: Any,
           first: int) -> dict[str, dict[str, Any]]:
    """Per-group sums and means of the (rows, length - first) token log-probs of the stacked groups."""
    token_logps = token_logps * mask
    tokens = mask.sum(dim=1)
    summed = token_logps.sum(dim=1)
    mean = summed / tokens.clamp(min=1)
    result: dict[str, dict[str, Any]] = {}
    start = 0
    for (name, rows), size in zip(groups, sizes):
        sl = slice(start, start + size)
        result[name] = {"sum": summed[sl], "mean": mean[sl], "tokens": tokens[sl], "token_logps": token_logps[sl]}
        if rows.token_weights is not None:
            result[name]["token_weights"] = rows.token_weights[:, first:]
        start += size
    return result


@dataclass
class PackedLayout:
    """Where every scored token of a batch sits in its packed rows (built once per batch, on CPU)."""

    input_ids: Any  # (rows, width)
    position_ids: Any  # (rows, width): each response restarts right after its prefix
    segment: Any  # (rows, width): 0 prefix, k the k-th response of the row, -1 padding
    image_rows: list[tuple[str, int]]  # per packed row: (group, row) whose image tensors it carries
    predict_at: Any  # (tokens,) packed position whose logits predict each scored token
    token_at: Any  # (tokens,) its packed position
    token_row: Any  # (tokens,) its packed row
    out_row: Any  # (tokens,) its row in concatenated_forward's stacked groups
    out_col: Any  # (tokens,) its column in the window that starts at the earliest response token
    first: int

    def attention_mask(self, dtype: Any, device: Any) -> Any:
        """(rows, 1, width, width) additive mask: causal, a response sees its prefix and itself only."""
        import torch

        segment = self.segment.to(device)
        width = segment.shape[1]
        query, key = segment[:, :, None], segment[:, None, :]
        allowed = torch.ones((width, width), dtype=torch.bool, device=device).tril()
        allowed = allowed & (key >= 0) & ((key == 0) | (key == query))
        allowed |= torch.eye(width, dtype=torch.bool, device=device)  # padding sees itself: no empty softmax
        mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
        return mask.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]


def pack_layout(batch: PreferenceBatch) -> PackedLayout:
    """The packed rows of ``batch``: every row of a non-chosen group flagged in ``batch.shared`` is appended,
    response only, to the chosen row of its pair; every other row keeps a row of its own."""
    import torch

    groups = batch.groups()
    by_name = dict(groups)
    sizes = [rows.input_ids.shape[0] for _, rows in groups]
    offset = {name: sum(sizes[:k]) for k, (name, _) in enumerate(groups)}
    first = _first_response(groups)
    ends = {name: rows.attention_mask.sum(dim=1).tolist() for name, rows in groups}
    starts = {name: rows.prompt_lens.tolist() for name, rows in groups}
    plan: list[tuple[tuple[str, int], list[tuple[str, int]]]] = []
    for i in range(len(batch.ids)):
        sharing = [name for name, _ in groups[1:] if name in batch.shared and bool(batch.shared[name][i])]
        plan.append((("chosen", i), [("chosen", i)] + [(name, i) for name in sharing]))
        plan.extend(((name, i), [(name, i)]) for name, _ in groups[1:] if name not in sharing)

    ids_rows, pos_rows, seg_rows = [], [], []
    targets: list[tuple[int, int, int, int, int]] = []  # predict_at, token_at, row, out_row, out_col
    for r, ((base, i), responses) in enumerate(plan):
        prefix = starts[base][i]
        ids, pos, seg = [by_name[base].input_ids[i, :prefix]], [torch.arange(prefix)], [torch.zeros(prefix)]
        at = prefix
        for k, (name, j) in enumerate(responses, start=1):
            lo, hi = starts[name][j], ends[name][j]
            ids.append(by_name[name].input_ids[j, lo:hi])
            pos.append(torch.arange(prefix, hi - lo + prefix))
            seg.append(torch.full((hi - lo,), k))
            targets.extend((prefix - 1 if t == 0 else at + t - 1, at + t, r, offset[name] + j, lo + t - first)
                           for t in range(hi - lo))
            at += hi - lo
        ids_rows.append(torch.cat(ids))
        pos_rows.append(torch.cat(pos))
        seg_rows.append(torch.cat(seg))

    width = max(len(row) for row in ids_rows)
    input_ids = torch.full((len(plan), width), batch.pad_token_id, dtype=batch.chosen.input_ids.dtype)
    position_ids = torch.zeros((len(plan), width), dtype=torch.long)
    segment = torch.full((len(plan), width), -1, dtype=torch.long)
    for r, (ids, pos, seg) in enumerate(zip(ids_rows, pos_rows, seg_rows)):
        input_ids[r, :len(ids)], position_ids[r, :len(ids)], segment[r, :len(ids)] = ids, pos, seg
    columns = torch.tensor(targets, dtype=torch.long).T
    return PackedLayout(input_ids, position_ids, segment, [base for base, _ in plan], *columns, first=first)


def packed_forward(model: Any, batch: PreferenceBatch) -> dict[str, dict[str, Any]]:
    """``concatenated_forward``'s result from one forward over packed rows (module docstring).

    The layout is computed once per batch and kept on it, so the reference and the policy forward share
    it. Image tensors must hold one entry per row along dim 0 (LLaVA, Idefics3: ``Family.packs_prefix``).
    """
    import torch
    import torch.nn.functional as F

    groups = batch.groups()
    by_name = dict(groups)
    if "packed" not in batch.cache:
        batch.cache["packed"] = pack_layout(batch)
    layout: PackedLayout = batch.cache["packed"]
    dtype = next(p.dtype for p in model.parameters())
    device = batch.chosen.input_ids.device
    if ("mask", dtype) not in batch.cache:
        batch.cache[("mask", dtype)] = layout.attention_mask(dtype, device)
    kwargs: dict[str, Any] = {}
    for key in batch.chosen.images:
        kwargs[key] = torch.cat([by_name[name].images[key][i:i + 1] for name, i in layout.image_rows])
    if "pixel_values" in kwargs and torch.is_floating_point(kwargs["pixel_values"]):
        kwargs["pixel_values"] = kwargs["pixel_values"].to(dtype)

    input_ids = layout.input_ids.to(device)
    earliest = int(layout.predict_at.min())
    out = model(input_ids=input_ids, attention_mask=batch.cache[("mask", dtype)],
                position_ids=layout.position_ids.to(device), logits_to_keep=input_ids.shape[1] - earliest,
                use_cache=False, **kwargs)
    rows, predict_at = layout.token_row.to(device), layout.predict_at.to(device)
    logits = out.logits[rows, predict_at - earliest]
    scored = -F.cross_entropy(logits.float(), input_ids[rows, layout.token_at.to(device)], reduction="none")

    # back to concatenated_forward's layout: groups stacked, the window from the earliest response token
    sizes = [rows.input_ids.shape[0] for _, rows in groups]
    length = batch.chosen.input_ids.shape[1]
    token_logps = torch.zeros((sum(sizes), length - layout.first), dtype=scored.dtype, device=device)
    token_logps = token_logps.index_put((layout.out_row.to(device), layout.out_col.to(device)), scored)
    response = torch.cat([rows.response_mask for _, rows in groups])[:, layout.first:]
    return _split(groups, sizes, token_logps, response, layout.first)


def to_logprobs(groups: dict[str, dict[str, Any]]) -> LogProbs:
    """Pack the groups into the methods' ``LogProbs``.

    Without rejected rows (a method that is not ``paired``) the ``rejected_*`` fields are zeros of the batch's
    shape. Extra rows appear in ``extra`` as ``<row>`` (summed), ``<row>_mean`` and ``<row>_tokens``. Per-token
    weights of the chosen and rejected rows, when the method gives any (``Method.token_weights``), are
    ``chosen_token_weights`` / ``rejected_token_weights`` (the shape of ``chosen_token_logps``).
    """
    import torch

    chosen = groups["chosen"]
    rejected = groups.get("rejected")
    if rejected is None:
        rejected = {k: torch.zeros_like(v) for k, v in chosen.items()}
    extra: dict[str, Any] = {}
    for name, values in groups.items():
        if name in ("chosen", "rejected"):
            continue
        extra[name] = values["sum"]
        extra[f"{name}_mean"] = values["mean"]
        extra[f"{name}_tokens"] = values["tokens"]
    return LogProbs(
        chosen_logps=chosen["sum"], rejected_logps=rejected["sum"],
        chosen_mean_logps=chosen["mean"], rejected_mean_logps=rejected["mean"],
        chosen_tokens=chosen["tokens"], rejected_tokens=rejected["tokens"],
        chosen_token_logps=chosen.get("token_logps"), rejected_token_logps=rejected.get("token_logps"),
        extra=extra, chosen_token_weights=chosen.get("token_weights"),
        rejected_token_weights=groups["rejected"].get("token_weights") if "rejected" in groups else None,
    )
