"""Turn (image, prompt, response) into model rows, generically across model families.

The prompt goes through the model's own chat template (``format_prompt``) and the processor, with the
image, so each family places and expands its image tokens its own way; the response is the text the chat
template puts after the prompt for an assistant turn (so end-of-turn tokens match what the model was
trained on), tokenized without special tokens and appended. The response mask marks the appended tokens:
it is what every sequence log-probability sums over. Rows longer than ``max_length`` lose the end of their
response; the prompt (with its image tokens) is never cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.core.errors import HarnessError

# keys of the processor output that are per-token (padded along the sequence) rather than image tensors;
# "labels" (PaliGemma's processor returns them) would make the model compute its own loss over the row
TEXT_KEYS = ("input_ids", "attention_mask", "labels")
# sequence-aligned extras and the value their response tokens take (PaliGemma marks the suffix with 1)
SEQUENCE_FILL = {"token_type_ids": 1, "mm_token_type_ids": 0}
# response token lists a RowEncoder keeps (a few MB); the memory starts over when full
MAX_REMEMBERED = 100_000


@dataclass
class EncodedRow:
    """One sequence: token ids (1-D), the prompt length, image tensors and sequence-aligned extras."""

    input_ids: Any
    prompt_len: int
    images: dict[str, Any] = field(default_factory=dict)
    sequence: dict[str, Any] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(self.input_ids.shape[0])


@dataclass
class EncodedPrompt:
    """The processor's output for one image + prompt, before any response is appended."""

    prompt: str
    text: str  # the prompt after the chat template
    input_ids: Any
    images: dict[str, Any] = field(default_factory=dict)
    sequence: dict[str, Any] = field(default_factory=dict)


class RowEncoder:
    """Encodes rows for one loaded ``HFVisionLanguageModel`` (picklable: used inside data-loader workers)."""

    def __init__(self, processor: Any, format_prompt: Any, max_length: int):
        self.processor = processor
        self.format_prompt = format_prompt
        self.max_length = max_length
        self.tokenizer = getattr(processor, "tokenizer", processor)
        # (templated prompt, prompt, response) -> the response's token ids (chat template + tokenizer)
        self._responses: dict[tuple[str, str, str], list[int]] = {}

    def response_text(self, prompt_text: str, prompt: str, response: str) -> str:
        """What the chat template writes after the prompt for an assistant turn carrying ``response``."""
        messages = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]},
            {"role": "assistant", "content": [{"type": "text", "text": response}]},
        ]
        try:
            full = self.processor.apply_chat_template(messages, tokenize=False)
        except Exception:  # noqa: BLE001 - templates without an assistant turn fall back below
            full = ""
        if full.startswith(prompt_text) and response in full[len(prompt_text):]:
            return full[len(prompt_text):].rstrip()  # no training on the newline after end-of-turn
        return " " + response

    def encode(self, image: Any, prompt: str, response: str, *, row_id: str = "") -> EncodedRow:
        return self.append(self.encode_prompt(image, prompt), response, row_id=row_id)

    def encode_prompt(self, image: Any, prompt: str) -> EncodedPrompt:
        """The image + prompt part of a row, to which ``append`` adds responses: one processor call (image
        preprocessing included) serves every row of a pair that shows the same image."""
        import torch

        prompt_text = self.format_prompt(prompt)
        inputs = self.processor(text=[prompt_text], images=[image], return_tensors="pt")
        prompt_ids = inputs["input_ids"][0]
        images: dict[str, Any] = {}
        sequence: dict[str, Any] = {}
        for key, value in inputs.items():
            if key in TEXT_KEYS or not torch.is_tensor(value):
                continue
            if value.dim() == 2 and value.shape[0] == 1 and value.shape[1] == len(prompt_ids):
                sequence[key] = value[0]
            else:
                images[key] = value
        return EncodedPrompt(prompt, prompt_text, prompt_ids, images, sequence)

    def response_ids(self, encoded: EncodedPrompt, response: str) -> list[int]:
        """The token ids ``append`` puts after ``encoded`` for ``response`` (end-of-sequence included),
        computed once per prompt and response text (``MAX_REMEMBERED`` of them)."""
        key = (encoded.text, encoded.prompt, response)
        ids = self._responses.get(key)
        if ids is None:
            suffix = self.response_text(encoded.text, encoded.prompt, response)
            ids = self.tokenizer(suffix, add_special_tokens=False)["input_ids"]
            eos = self.tokenizer.eos_token_id
            if eos is not None and eos not in ids:
                ids = [*ids, eos]
            if len(self._responses) >= MAX_REMEMBERED:
                self._responses.clear()
            self._responses[key] = ids
        return ids

    def append(self, encoded: EncodedPrompt, response: str, *, row_id: str = "") -> EncodedRow:
        """``encoded`` followed by ``response`` (and end-of-sequence), cut to ``max_length``."""
        import torch

        prompt_ids = encoded.input_ids
        response_ids = self.response_ids(encoded, response)
        room = self.max_length - len(prompt_ids)
        if room < 1:
            raise HarnessError(
                f"pair {row_id}: the prompt is {len(prompt_ids)} tokens (image tokens included), which leaves "
                f"no room for the response under max_length={self.max_length}; raise --max-length"
            )
        response_ids = response_ids[:room]
        ids = torch.cat([prompt_ids, torch.tensor(response_ids, dtype=prompt_ids.dtype)])
        sequence = {
            key: torch.cat([value, torch.full((len(response_ids),), SEQUENCE_FILL.get(key, 0), dtype=value.dtype)])
            for key, value in encoded.sequence.items()
        }
        return EncodedRow(ids, len(prompt_ids), encoded.images, sequence)
