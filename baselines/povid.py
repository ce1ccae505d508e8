"""POVID: preference pairs from injected hallucinations and diffusion-noised images (Zhou et al. 2024).

What the release does (github YiyangZhou/POVID; ``scripts/run_povid.sh`` runs ``llava/train/train_dpo_inherent.py``
with the trainer ``tool/dpo_trainer_inherent.py``, which replaces TRL's ``DPOTrainer``):

- **Noise** (``train_dpo_inherent.py``, ``add_diffusion_noise(image_tensor, 500)`` in
  ``LazySupervisedDataset.__getitem__``): forward diffusion at step 500 of 1000 on VCD's sigmoid schedule,
  ``betas = sigmoid(linspace(-6, 6, 1000)) * (5e-3 - 1e-5) + 1e-5``, on the whole image.
- **Text term** (``concatenated_multi_forward``: ``chosen_logits`` and ``rejected_logits``, both with
  ``images=batch['images']``): the ground truth and the GPT-4V-hallucinated answer of the preference file,
  both scored on the CLEAN image; ``losses = dpo_loss(chosen, rejected)``.
- **Image term** (``rejected_logits_own`` and ``_get_noisy_batch_logps``): the ground-truth tokens are run
  on the NOISED image; at each response position the arg-max token ``y^_t = argmax p(. | x_noised, y_w<t)``
  is the dispreferred token, and its log-prob is read from the CLEAN-image logits,
  ``sum_t log p(y^_t | x, y_w<t)``. The policy and the reference (adapters off) each pick their own
  arg-max, recomputed at every step. ``self_losses = dpo_loss(chosen, rejected_own)``.
- **Mixing** (``get_batch_metrics``): ``losses = 0.5 * self_losses + 0.5 * losses``: two DPO losses
  averaged, not two log-ratios inside one sigmoid. ``beta`` is TRL's default 0.1 (``LLaVATrainer`` passes
  none); ``loss_type`` sigmoid; summed log-probs.
- **Two stages**: ``run_dpo.sh`` first trains plain DPO on the text pairs (3 epochs), the LoRA is merged,
  then ``run_povid.sh`` trains the mixed loss above for 1 epoch from that merged model.

The builder here (``variant="released"``, the default) writes, per training sample:

- a **text pair**: ground truth over a hallucination of it, on the clean image
  (``harness.curation.hallucinate.make_hallucination``, seeded as the default text pairs are, so DPO's and POVID's
  text sides agree; POVID prompts GPT-4V, the offline rules stand in for it); a sample no edit can be
  verified to contradict is skipped and counted;
- an **image-side pair**: ground truth over the target model's own GREEDY answer to the question on the
  noised image, both scored on the clean image (so in the core's terms it is a same-image pair, kind
  ``"text"``, source ``povid-noised-greedy``; the noised image, step and schedule are in ``extra``). A
  greedy answer with the ground truth's words (``same_text``), or an empty one, is not dispreferred: the
  sample's image pair is skipped and counted (in the release such a sample's term is the constant log 2,
  with no gradient).

The loss is DPO per pair; the core averages ``w_i * loss_i`` over a batch, so the two pairs of a sample,
each of weight 1, contribute ``0.5 * L_image + 0.5 * L_text``, the release's mixing (exactly when both
land in one batch; the loader shuffles pairs, so in general per epoch). Departures, and why: the release's
image-side dispreferred tokens are the teacher-forced arg-max on the ground-truth prefix, recomputed online
by the policy and by the reference; the shared core scores given token sequences, so here the dispreferred
answer is the base model's free-running greedy answer, generated once when the pairs are built (the policy
equals the reference at the first step, where both coincide in choosing it from the same model). The
release's noise is added to [0, 1] pixels and cast back without clipping; ``harness.curation.imaging`` noises
[-1, 1] pixels and clips. The release's stage one (DPO on the text pairs alone) is not repeated here: run
``dpo`` on ``kinds=text`` pairs first to reproduce it.

``variant="pooled"`` is the earlier comparison form: the text pair as above and a visual pair of the
ground truth on the image over the ground truth on the noised image, pooled into DPO (MMedPO's D_t and
D_v layout). It needs no model.
"""

from __future__ import annotations

import dataclasses
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baselines._self_generated import Sample, run_chunks, same_text
from baselines.dpo import DPO
from harness.core.errors import HarnessError
from harness.core.io import atomic_write
from harness.core.options import option_field
from harness.curation.hallucinate import Hallucination, make_hallucination
from harness.curation.pairs import save_sample_image, task_prompt
from harness.curation.preferences import PreferencePair, write_pairs
from harness.curation.textpairs import item_seed
from harness.methods.base import PairContext

log = logging.getLogger(__name__)

NOISED_DIR = "povid_noised"
PAIRS_FILE = "povid_pairs.jsonl"
KINDS = ("text", "visual")
VARIANTS = ("released", "pooled")


@dataclass
class POVIDOptions:
    """The options of POVID's pair builder (``--option KEY=VALUE``)."""

    variant: str = option_field(
        "released", "'released': image-side rejected = the model's greedy answer on the noised image, scored on "
        "the clean image (needs the model); 'pooled': ground truth on the noised image, DPO over pooled pairs",
        choices=VARIANTS)
    kinds: tuple[str, ...] = option_field(("text", "visual"), "which sides to build: text (hallucination), "
                                          "visual (noised image), comma-separated")
    noise_step: int = option_field(500, "forward-diffusion step of the noised image (release: 500)")
    num_steps: int = option_field(1000, "diffusion steps of the schedule (release: 1000)")
    schedule: str = option_field("sigmoid", "noise schedule: 'sigmoid' (the release's, VCD's) or 'linear' "
                                 "(DDPM's)", choices=("sigmoid", "linear"))
    max_new_tokens: int = option_field(64, "longest greedy answer on the noised image (released variant)")
    batch_size: int = option_field(8, "questions per generation batch (released variant)")

    def __post_init__(self) -> None:
        if isinstance(self.kinds, str):
            self.kinds = tuple(k.strip() for k in self.kinds.split(",") if k.strip())
        self.kinds = tuple(self.kinds)
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown pair kinds {unknown} (use {', '.join(KINDS)})")
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be >= 1")


class POVID(DPO):
    """Preference Optimization in VLLM with AI-generated Dispreferences; per pair DPO (Rafailov et al. Eq. 7).

    Per training sample (released variant; module docstring), with ``r(y) = log pi(y|x)/pi_ref(y|x)``:

        loss = 0.5 * -log sigmoid(beta * (r(y_w) - r(y_hallucinated)))
             + 0.5 * -log sigmoid(beta * (r(y_w) - r(y_greedy on noised x)))      (both y scored on x)

    realised as two pairs of weight 1 whose per-pair DPO losses the core averages.
    Worked example: beta = 0.1, r(y_w) = 2, r(y_hallucinated) = -1, r(y_greedy) = 0.5:
    0.5 * -log sigmoid(0.3) + 0.5 * -log sigmoid(0.15) = 0.5 * 0.554355 + 0.5 * 0.620957 = 0.587656.

    Builder options: ``POVIDOptions`` (``variant``, ``kinds``, ``noise_step``, ``num_steps``, ``schedule``,
    ``max_new_tokens``, ``batch_size``). Images are written under ``context.output_dir`` and the pairs'
    image paths are relative to it: train with ``image_root = context.output_dir``. Reruns reuse the
    written images and replay the greedy answers from the chunk journal.
    """

    name = "povid"
    citation = (
        "Zhou, Cui, Rafailov, Finn, Yao. Aligning Modalities in Vision Large Language Models via Preference "
        "Fine-tuning. arXiv:2402.11411"
    )
    pair_kinds = ("text", "visual")
    needs_model = True
    builder_options = POVIDOptions

    @classmethod
    def builder_needs_model(cls, options: dict[str, Any] | None = None) -> bool:
        """The released variant samples the model for its image-side pairs; text-only or pooled do not."""
        parsed = cls.parse_builder_options(options)
        return parsed.variant == "released" and "visual" in parsed.kinds

    def build_pairs(self, context: PairContext) -> list[PreferencePair]:
        options = self.parse_builder_options(context.options)
        model = self._model(context) if self.builder_needs_model(context.options) else None
        output_dir = Path(context.output_dir)
        samples, noised, texts = self._prepare(context, options)
        greedy: list[str | None] = [None] * len(samples)
        if model is not None:
            # only the model's answers go through the chunk journal; everything else is recomputed
            chunks = run_chunks(self.name, context, samples, dataclasses.asdict(options),
                                lambda chunk, _: greedy_on_noised(
                                    model, [(output_dir / noised[s.image_name], s.prompt) for s in chunk],
                                    max_new_tokens=options.max_new_tokens),
                                unit="question")
            greedy = [answer for chunk in chunks for answer in chunk]
        counts = dict.fromkeys(("text", "image", "visual", "no_hallucination", "greedy_is_answer", "empty_greedy"), 0)
        pairs = []
        for sample, answer in zip(samples, greedy):
            pairs.extend(self._sample_pairs(sample, texts.get(sample.id), answer, noised, options, counts))
        write_pairs(output_dir / PAIRS_FILE, pairs)
        log.info("povid (%s): %d pairs from %d samples written to %s (text %d, image-side %d, visual %d; "
                 "skipped: no verified hallucination %d, greedy answer = ground truth %d, empty greedy answer %d)",
                 options.variant, len(pairs), len(samples), output_dir / PAIRS_FILE, counts["text"],
                 counts["image"], counts["visual"], counts["no_hallucination"], counts["greedy_is_answer"],
                 counts["empty_greedy"])
        return pairs

    def _model(self, context: PairContext) -> Any:
        model = context.model
        if model is None or not callable(getattr(model, "generate", None)):
            raise HarnessError(f"method '{self.name}': variant=released builds its image-side pairs from the "
                               f"target model's greedy answers on noised images: pass a model (--model), or "
                               f"use --option variant=pooled or --option kinds=text")
        return model

    def _prepare(self, context: PairContext, options: POVIDOptions
                 ) -> tuple[list[Sample], dict[str, str], dict[str, Hallucination | None]]:
        """Each sample once (its image written, not kept), each distinct image's noised copy, and each
        sample's verified hallucination (None when none can be made)."""
        output_dir = Path(context.output_dir)
        samples, noised, texts = [], {}, {}
        for index, sample in enumerate(context.samples):
            sample_id = str(sample.get("id", index))
            answer = str(sample.get("answer", "")).strip()
            if not answer:
                raise HarnessError(f"method '{self.name}': sample {sample_id} has no answer")
            image_name, image = save_sample_image(sample, output_dir, owner="method 'povid'", sample_id=sample_id)
            if "visual" in options.kinds and image_name not in noised:
                noised[image_name] = _save_noised(image, image_name, output_dir, options, context.seed)
            if "text" in options.kinds:
                row = {k: v for k, v in sample.items() if k not in ("image", "mask")}
                texts[sample_id] = make_hallucination({**row, "answer": answer}, seed=item_seed(context.seed, sample_id))
            samples.append(Sample(sample_id, task_prompt(context.task, sample), str(sample.get("question", "")),
                                  answer, str(sample.get("answer_type", "open")), None, image_name))
        return samples, noised, texts

    @staticmethod
    def _sample_pairs(sample: Sample, made: Hallucination | None, answer: str | None, noised: dict[str, str],
                      options: POVIDOptions, counts: dict[str, int]) -> list[PreferencePair]:
        """One sample's text pair and image-side (released) or visual (pooled) pair; skips are counted."""
        pairs = []
        if "text" in options.kinds:
            if made is None:
                counts["no_hallucination"] += 1
            else:
                counts["text"] += 1
                pairs.append(PreferencePair(
                    id=f"{sample.id}-text", image=sample.image_name, prompt=sample.prompt, chosen=sample.answer,
                    rejected=made.text, kind="text", source="povid-hallucination",
                    extra={"severity": made.severity, "contradictions": [c.__dict__ for c in made.contradictions]}))
        if "visual" not in options.kinds:
            return pairs
        noise = {"noise_step": options.noise_step, "num_steps": options.num_steps, "schedule": options.schedule}
        if options.variant == "pooled":
            counts["visual"] += 1
            pairs.append(PreferencePair(
                id=f"{sample.id}-visual", image=sample.image_name, prompt=sample.prompt, chosen=sample.answer,
                rejected=sample.answer, rejected_image=noised[sample.image_name], kind="visual",
                source=f"povid-diffusion-{options.schedule}-{options.noise_step}", extra=noise))
        elif not answer or not answer.strip():
            counts["empty_greedy"] += 1
        elif same_text(answer, sample.answer):
            counts["greedy_is_answer"] += 1
        else:
            counts["image"] += 1
            pairs.append(PreferencePair(
                id=f"{sample.id}-image", image=sample.image_name, prompt=sample.prompt, chosen=sample.answer,
                rejected=answer.strip(), kind="text", source="povid-noised-greedy",
                extra={**noise, "noised_image": noised[sample.image_name]}))
        return pairs


def greedy_on_noised(model: Any, rows: list[tuple[Path, str]], *, max_new_tokens: int) -> list[str]:
    """The model's greedy answer to each ``(noised image file, prompt)``, in one generation batch."""
    from harness.core.images import open_image
    from harness.models.base import GenerationConfig

    images = [open_image(path) for path, _ in rows]
    return list(model.generate(images, [prompt for _, prompt in rows], GenerationConfig(max_new_tokens=max_new_tokens)))


def _seed(seed: int, key: str) -> int:
    return (zlib.crc32(key.encode()) + seed) % 2**31


def _save_noised(image: Any, image_name: str, output_dir: Path, options: POVIDOptions, seed: int) -> str:
    """The noised copy of an image (relative name), written once; its name carries step, schedule and seed."""
    from harness.curation.imaging import diffusion_noise

    name = (f"{NOISED_DIR}/{Path(image_name).stem}-{options.schedule}-k{options.noise_step}"
            f"-of{options.num_steps}-s{seed}.png")
    if not (output_dir / name).is_file():
        noised = diffusion_noise(image, step=options.noise_step, num_steps=options.num_steps,
                                 schedule=options.schedule, seed=_seed(seed, image_name))
        with atomic_write(output_dir / name, "wb") as handle:
            noised.save(handle, format="PNG")
    return name
