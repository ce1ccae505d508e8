"""A preference batch: chosen, rejected and extra rows, each with its own image tensors, plus weights.

Rows of every group are right-padded to ONE common length so that the policy (and the reference) runs a
single concatenated forward over ``[chosen; rejected; extra...]``. Each side keeps its own pixel tensors:
a visual pair's rejected image (``PreferencePair.rejected_image``) differs from the chosen one.

Per-token weights (token-level methods): the weights a method's ``token_weights`` hook gives a pair (one
float per response token, in the encoder's token order; ``harness.methods.base.Method.token_weights``) land
in ``Rows.token_weights``, aligned with the response positions; every other position, and every row of a
pair without them, has weight 1. A response cut by ``max_length`` keeps the weights of its kept tokens.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import DataError, HarnessError
from harness.curation.preferences import PreferencePair
from harness.training.encoding import EncodedRow, RowEncoder

# bytes of encoded prompts (image tensors included) a dataset keeps for pairs that show the same image and
# prompt again (another pair of the same question, a later epoch); the least recently used go first
PROMPT_MEMO_BYTES = 512 * 2**20

# extra rows a method may request (``Method.extra_rows``): name -> (which text, which image)
EXTRA_ROWS = {
    "chosen_on_rejected_image": ("chosen", "rejected"),
    "rejected_on_chosen_image": ("rejected", "chosen"),
}


@dataclass
class Rows:
    """``input_ids``, ``attention_mask``, ``response_mask`` of shape (n, length); image tensors by key."""

    input_ids: Any
    attention_mask: Any
    response_mask: Any
    images: dict[str, Any] = field(default_factory=dict)
    sequence: dict[str, Any] = field(default_factory=dict)
    prompt_lens: Any = None
    token_weights: Any = None  # (n, length) float, 1 outside the response; None when no pair has any


@dataclass
class PreferenceBatch:
    ids: list[str]
    weights: Any
    chosen: Rows
    rejected: Rows | None = None
    extra: dict[str, Rows] = field(default_factory=dict)
    # per non-chosen group: which rows show the chosen row's image and prompt (the same prefix tokens),
    # so a packed forward can run that prefix once for both (``harness.training.logps``)
    shared: dict[str, Any] = field(default_factory=dict)
    pad_token_id: int = 0
    # per-batch values derived once and shared by the reference and policy forwards (the packed layout)
    cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def groups(self) -> list[tuple[str, Rows]]:
        out = [("chosen", self.chosen)]
        if self.rejected is not None:
            out.append(("rejected", self.rejected))
        out.extend(self.extra.items())
        return out

    def to(self, device: Any) -> PreferenceBatch:
        def move(rows: Rows) -> Rows:
            return Rows(
                rows.input_ids.to(device), rows.attention_mask.to(device), rows.response_mask.to(device),
                {k: v.to(device) for k, v in rows.images.items()},
                {k: v.to(device) for k, v in rows.sequence.items()}, rows.prompt_lens,
                rows.token_weights.to(device) if rows.token_weights is not None else None,
            )

        import torch

        # the packed layout is device-free; the rest of the cache (attention masks) holds for its device only
        same = self.chosen.input_ids.device == torch.device(device)
        return PreferenceBatch(
            self.ids, self.weights.to(device), move(self.chosen),
            move(self.rejected) if self.rejected is not None else None,
            {k: move(v) for k, v in self.extra.items()}, dict(self.shared), self.pad_token_id,
            cache={k: v for k, v in self.cache.items() if same or k == "packed"},
        )


class PairDataset:
    """Pairs -> encoded rows, loading images lazily (a torch map-style dataset)."""

    def __init__(self, pairs: list[PreferencePair], image_root: Path | None, encoder: RowEncoder,
                 with_rejected: bool, extra_rows: tuple[str, ...] = (), corrupt_image: Any = None,
                 seed: int = 0, token_weights: Any = None):
        self.pairs = pairs
        # method hook: pair -> {"chosen"/"rejected": per-token weights} or None (Method.token_weights)
        self.token_weights = token_weights
        # method hook for extra rows of pairs without a distinct rejected image (Method.corrupt_image)
        self.corrupt_image = corrupt_image
        self.seed = seed
        self.image_root = image_root
        self.encoder = encoder
        self.with_rejected = with_rejected
        self.extra_rows = extra_rows
        self._prompts: OrderedDict[tuple, Any] = OrderedDict()  # content key -> EncodedPrompt
        self._prompt_bytes = 0

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def row_names(self) -> list[str]:
        """The row groups of every batch, in forward order."""
        return ["chosen", *(["rejected"] if self.with_rejected else []), *self.extra_rows]

    def image_path(self, pair: PreferencePair, which: str) -> Path:
        name = pair.rejected_image if which == "rejected" and pair.rejected_image else pair.image
        path = Path(name)
        return path if path.is_absolute() or self.image_root is None else self.image_root / path

    def check_images(self, source: str) -> None:
        """Fail before training, naming the pair, when an image file is missing."""
        for pair in self.pairs:
            sides = ("chosen", "rejected") if self.with_rejected or self.extra_rows else ("chosen",)
            for which in sides:
                path = self.image_path(pair, which)
                if not path.is_file():
                    field_name = "rejected_image" if which == "rejected" and pair.rejected_image else "image"
                    raise DataError(source, f"image not found: {path}", record=pair.id, field=field_name)

    def _image(self, pair: PreferencePair, which: str):
        from harness.core.images import open_image

        field_name = "rejected_image" if which == "rejected" and pair.rejected_image else "image"
        return open_image(self.image_path(pair, which), record=pair.id, field=field_name)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.pairs[index]
        images = {"chosen": self._image(pair, "chosen")}
        needs_rejected_image = self.with_rejected or any(EXTRA_ROWS[r][1] == "rejected" for r in self.extra_rows)
        if needs_rejected_image:
            images["rejected"] = (
                self._image(pair, "rejected") if pair.rejected_image and pair.rejected_image != pair.image
                else images["chosen"]
            )
        distinct = bool(pair.rejected_image) and pair.rejected_image != pair.image
        if self.extra_rows and not distinct and self.corrupt_image is not None:
            # the extra rows score text against a corrupted image; seeded by the pair so reruns agree
            seed = (zlib.crc32(pair.id.encode()) + self.seed) % 2**31
            images["corrupted"] = self.corrupt_image(images["chosen"], seed=seed)
        texts = {"chosen": pair.chosen, "rejected": pair.rejected}
        item: dict[str, Any] = {"id": pair.id, "weight": pair.weight}
        token_weights = self.token_weights(pair) if self.token_weights is not None else None
        if token_weights:
            unknown = set(token_weights) - {"chosen", "rejected"}
            if unknown:
                raise HarnessError(f"pair {pair.id}: the method's token weights name side(s) "
                                   f"{', '.join(sorted(unknown))}; the sides are chosen and rejected")
            item["token_weights"] = token_weights
        # each distinct image is encoded once with the prompt; rows showing the chosen image share its prefix
        rows = [("chosen", "chosen", "chosen")]
        if self.with_rejected:
            rows.append(("rejected", "rejected", "rejected" if images["rejected"] is not images["chosen"]
                         else "chosen"))
        for name in self.extra_rows:
            text, image = EXTRA_ROWS[name]
            if image == "rejected" and "corrupted" in images:
                image = "corrupted"
            elif image == "rejected" and images["rejected"] is images["chosen"]:
                image = "chosen"
            rows.append((name, text, image))
        prompts: dict[str, Any] = {}
        shared = []
        for name, text, image in rows:
            if image not in prompts:
                prompts[image] = self.encoded_prompt(images[image], pair.prompt)
            item[name] = self.encoder.append(prompts[image], texts[text], row_id=pair.id)
            if name != "chosen" and image == "chosen":
                shared.append(name)
        item["shared"] = shared
        return item


    def encoded_prompt(self, image: Any, prompt: str) -> Any:
        """``encoder.encode_prompt(image, prompt)``, once per distinct image content and prompt: the
        processor call (image preprocessing included) is most of a pair's encoding, and pairs often repeat
        an image and a question (a text and a visual pair of one question, every epoch after the first).
        Kept up to ``PROMPT_MEMO_BYTES``; an image that is not a PIL image is encoded every time."""
        if not hasattr(image, "tobytes"):
            return self.encoder.encode_prompt(image, prompt)
        key = (prompt, image.mode, image.size, hashlib.sha1(image.tobytes()).digest())
        encoded = self._prompts.get(key)
        if encoded is not None:
            self._prompts.move_to_end(key)
            return encoded
        encoded = self.encoder.encode_prompt(image, prompt)
        size = _nbytes(encoded)
        if size <= PROMPT_MEMO_BYTES:
            self._prompts[key] = encoded
            self._prompt_bytes += size
            while self._prompt_bytes > PROMPT_MEMO_BYTES:
                self._prompt_bytes -= _nbytes(self._prompts.popitem(last=False)[1])
        return encoded


def _nbytes(encoded: Any) -> int:
    tensors = [getattr(encoded, "input_ids", None), *getattr(encoded, "images", {}).values(),
               *getattr(encoded, "sequence", {}).values()]
    return sum(t.numel() * t.element_size() for t in tensors if hasattr(t, "element_size"))


class Collator:
    """Pads every row group of a list of items to one shared length (right padding)."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, items: list[dict[str, Any]]) -> PreferenceBatch:
        import torch

        names = [k for k in items[0] if k not in ("id", "weight", "token_weights", "shared")]
        length = max(item[name].length for item in items for name in names)
        groups = {name: self._pad([item[name] for item in items], length) for name in names}
        for name in ("chosen", "rejected"):
            if name in groups and any(name in item.get("token_weights", {}) for item in items):
                groups[name].token_weights = self._token_weights(items, name, groups[name], length)
        weights = torch.tensor([float(item["weight"]) for item in items], dtype=torch.float32)
        extra = {k: v for k, v in groups.items() if k not in ("chosen", "rejected")}
        shared = {name: torch.tensor([name in item.get("shared", ()) for item in items])
                  for name in names if name != "chosen"}
        return PreferenceBatch([item["id"] for item in items], weights, groups["chosen"], groups.get("rejected"),
                               extra, shared, self.pad_token_id)

    @staticmethod
    def _token_weights(items: list[dict[str, Any]], name: str, rows: Rows, length: int):
        import torch

        weights = torch.ones((len(items), length), dtype=torch.float32)
        for i, item in enumerate(items):
            given = item.get("token_weights", {}).get(name)
            if given is None:
                continue
            start, n = int(rows.prompt_lens[i]), int(item[name].length) - int(rows.prompt_lens[i])
            kept = torch.as_tensor(list(given)[:n], dtype=torch.float32)
            weights[i, start:start + len(kept)] = kept
        return weights

    def _pad(self, rows: list[EncodedRow], length: int) -> Rows:
        import torch

        n = len(rows)
        ids = torch.full((n, length), self.pad_token_id, dtype=rows[0].input_ids.dtype)
        attention = torch.zeros((n, length), dtype=torch.long)
        response = torch.zeros((n, length), dtype=torch.bool)
        sequence = {k: torch.zeros((n, length), dtype=v.dtype) for k, v in rows[0].sequence.items()}
        for i, row in enumerate(rows):
            ids[i, :row.length] = row.input_ids
            attention[i, :row.length] = 1
            response[i, row.prompt_len:row.length] = True
            for key, value in row.sequence.items():
                sequence[key][i, :row.length] = value
        images = {key: _stack_images([row.images[key] for row in rows]) for key in rows[0].images}
        prompt_lens = torch.tensor([row.prompt_len for row in rows])
        return Rows(ids, attention, response, images, sequence, prompt_lens)


def _stack_images(tensors: list[Any]) -> Any:
    """Concatenate per-row image tensors along dim 0, zero-padding the other dims to the largest.

    Rows differ when a processor splits images into a varying number of tiles (Idefics3 / SmolVLM:
    ``pixel_values`` of shape (1, tiles, 3, H, W)); the model drops all-zero tiles and masks the padding
    through ``pixel_attention_mask``, which is how the processor itself pads a batch.
    """
    import torch
    import torch.nn.functional as F

    shape = [max(t.shape[d] for t in tensors) for d in range(tensors[0].dim())]
    padded = []
    for tensor in tensors:
        pad = []
        for d in reversed(range(1, tensor.dim())):
            pad.extend((0, shape[d] - tensor.shape[d]))
        padded.append(F.pad(tensor, pad) if any(pad) else tensor)
    return torch.cat(padded)
