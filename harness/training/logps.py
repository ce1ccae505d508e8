"""Sequence log-probabilities from ONE concatenated forward over all row groups of a batch.

The logits are only computed where they are needed: from the earliest response position to the end
(``logits_to_keep``), so the long image+prompt prefix never goes through the LM head. Per-token
log-probs are ``-cross_entropy`` in float32 (no full ``log_softmax`` tensor kept for backward).
"""

from __future__ import annotations

from typing import Any

from harness.methods.base import LogProbs
from harness.training.batch import PreferenceBatch


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
    first = int(response.float().argmax(dim=1).min())  # earliest response token over all rows
    keep = length - first + 1  # logits at positions first-1 .. length-1
    out = model(input_ids=input_ids, attention_mask=attention, logits_to_keep=keep, use_cache=False, **kwargs)
    logits = out.logits[:, :-1]
    labels = input_ids[:, length - keep + 1:]
    mask = response[:, length - keep + 1:]
    token_logps = -F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none"
    ).view(labels.shape)
    token_logps = token_logps * mask
    tokens = mask.sum(dim=1)
    summed = token_logps.sum(dim=1)
    mean = summed / tokens.clamp(min=1)
    result: dict[str, dict[str, Any]] = {}
    start = 0
    for (name, _), size in zip(groups, sizes):
        sl = slice(start, start + size)
        result[name] = {"sum": summed[sl], "mean": mean[sl], "tokens": tokens[sl], "token_logps": token_logps[sl]}
        rows = dict(groups)[name]
        if rows.token_weights is not None:
            result[name]["token_weights"] = rows.token_weights[:, length - keep + 1:]
        start += size
    return result


def to_logprobs(groups: dict[str, dict[str, Any]]) -> LogProbs:
    """Pack the groups into the methods' ``LogProbs``.

    Without rejected rows (SFT) the ``rejected_*`` fields are zeros of the batch's shape. Extra rows appear
    in ``extra`` as ``<row>`` (summed), ``<row>_mean`` and ``<row>_tokens``. Per-token weights of the chosen
    and rejected rows, when the pairs carry them, appear as ``chosen_token_weights`` / ``rejected_token_weights``
    (the shape of ``chosen_token_logps``).
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
    for name, values in (("chosen", chosen), ("rejected", rejected)):
        if "token_weights" in values:
            extra[f"{name}_token_weights"] = values["token_weights"]
    return LogProbs(
        chosen_logps=chosen["sum"], rejected_logps=rejected["sum"],
        chosen_mean_logps=chosen["mean"], rejected_mean_logps=rejected["mean"],
        chosen_tokens=chosen["tokens"], rejected_tokens=rejected["tokens"],
        chosen_token_logps=chosen.get("token_logps"), rejected_token_logps=rejected.get("token_logps"),
        extra=extra,
    )
