"""The model contract used by evaluation, curation (sampling) and judging.

A ``VisionLanguageModel`` answers a batch of (image, prompt) pairs. Prompts are the task's user text
without any image token: the adapter places the image the way its family expects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.core.errors import HarnessError

if TYPE_CHECKING:
    from PIL.Image import Image


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 64
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    num_return_sequences: int = 1
    seed: int | None = None


def check_generate_args(
    images: Sequence[Any], prompts: Sequence[str], config: GenerationConfig | None
) -> GenerationConfig:
    """What every ``generate`` checks first: one image (or ``None``) per prompt. Returns ``config``, or the
    default ``GenerationConfig`` when it is ``None``."""
    if len(images) != len(prompts):
        raise HarnessError(f"got {len(images)} images for {len(prompts)} prompts")
    return config or GenerationConfig()


class VisionLanguageModel(ABC):
    """Anything that answers questions about images."""

    name: str = "model"

    @abstractmethod
    def generate(
        self,
        images: Sequence[Image | None],
        prompts: Sequence[str],
        config: GenerationConfig | None = None,
    ) -> list[str] | list[list[str]]:
        """One answer per prompt; a list of ``num_return_sequences`` answers per prompt when it is > 1.

        Implementations start with ``check_generate_args`` (one image or ``None`` per prompt)."""

    def describe(self) -> dict[str, Any]:
        """What identifies this model in a results record (name, path or endpoint, revision...)."""
        return {"name": self.name}
