"""A method with its own pair builder: DPO-Shift trained on answer-swap pairs.

The builder needs no model and no judge. For every training sample it writes

- a **text** pair: the sample's reference answer preferred over the answer of another case with the same
  answer type (closed/open/report) whose answer differs, so the rejected answer is fluent and on-topic but
  belongs to another image;
- with ``mirror=true``, for answers that name a side (left/right), a **visual** pair: the answer on the image
  preferred over the same answer on the left-right mirrored image, where the side it names is wrong.

Images go under ``PairContext.output_dir`` (``harness.curation.pairs.save_image``) and the pairs' image paths
are relative to it, so training uses ``--image-root <output_dir>``.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path

from harness.core.options import option_field
from harness.curation.pairs import save_image, save_sample_image, task_prompt
from harness.curation.preferences import PreferencePair, write_pairs
from harness.methods import PairContext
from harness_plugin_example.dpo_shift import DPOShift

log = logging.getLogger(__name__)

PAIRS_FILE = "answer_swap_pairs.jsonl"
MIRRORED_DIR = "mirrored"
SIDE = re.compile(r"\b(left|right)\b", re.IGNORECASE)


@dataclass
class AnswerSwapOptions:
    """The builder's options: ``--option KEY=VALUE`` on ``harness curate`` / ``harness run``."""

    same_type: bool = option_field(True, "take the rejected answer from a case of the same answer type "
                                         "(closed/open/report); false: from any case")
    mirror: bool = option_field(False, "also make visual pairs for answers naming a side: the answer on the "
                                       "image over the same answer on the left-right mirrored image")
    max_items: int | None = option_field(None, "use only the first N samples (quick runs)")

    def __post_init__(self) -> None:
        if self.max_items is not None and self.max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {self.max_items}")


class AnswerSwap(DPOShift):
    """DPO-Shift's loss (see ``DPOShift``) on the answer-swap pairs this class builds (module docstring)."""

    name = "answer_swap"
    citation = (
        "Loss: Yang, Jiang, Zhang, Zhao, Li. DPO-Shift: Shifting the Distribution of Direct Preference "
        "Optimization. arXiv:2502.07599; pairs: answer swap (harness-plugin-example)"
    )
    pair_kinds = ("text", "visual")
    builder_options = AnswerSwapOptions
    # needs_model stays False: the builder reads the samples only (override builder_needs_model(options)
    # when some option values make the builder sample the target model)

    def build_pairs(self, context: PairContext) -> list[PreferencePair]:
        options = self.parse_builder_options(context.options)
        samples = list(context.samples)[: options.max_items]
        output_dir = Path(context.output_dir)
        rng = random.Random(context.seed)
        answers: dict[str, list[str]] = {}
        for sample in samples:
            group = str(sample.get("answer_type", "")) if options.same_type else ""
            answers.setdefault(group, [])
            if str(sample["answer"]).strip() not in answers[group]:
                answers[group].append(str(sample["answer"]).strip())
        pairs: list[PreferencePair] = []
        for index, sample in enumerate(samples):
            sample_id = str(sample.get("id", index))
            answer = str(sample["answer"]).strip()
            image_name, image = save_sample_image(sample, output_dir, owner=f"method '{self.name}'",
                                                  sample_id=sample_id)
            prompt = task_prompt(context.task, sample)
            group = str(sample.get("answer_type", "")) if options.same_type else ""
            others = [a for a in answers[group] if a.lower() != answer.lower()]
            if others:  # ids are unique per pair: the sample id plus the pair's kind
                pairs.append(PreferencePair(id=f"{sample_id}-swap", image=image_name, prompt=prompt, chosen=answer,
                                            rejected=rng.choice(others), kind="text", source="answer-swap"))
            if options.mirror and SIDE.search(answer):
                from PIL import ImageOps

                mirrored = save_image(ImageOps.mirror(image), output_dir, folder=MIRRORED_DIR)
                pairs.append(PreferencePair(id=f"{sample_id}-mirror", image=image_name, prompt=prompt,
                                            chosen=answer, rejected=answer, rejected_image=mirrored, kind="visual",
                                            source="answer-swap-mirror"))
        write_pairs(output_dir / PAIRS_FILE, pairs)
        log.info("answer_swap: %d pairs from %d samples written to %s", len(pairs), len(samples),
                 output_dir / PAIRS_FILE)
        return pairs
