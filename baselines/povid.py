"""POVID: preference pairs from injected hallucinations and diffusion-noised images (Zhou et al. 2024).

The pair builder makes, for every training sample, two pairs with the ground truth preferred:

- a text pair: the ground truth over a plausible hallucination of it (``harness.hallucinate``; POVID
  prompts GPT-4V for it, the offline rules stand in for it);
- a visual pair: the ground truth on the image over the ground truth on the whole image noised by
  forward diffusion at step 500 of 1000 (``harness.imaging.diffusion_noise``; the released code's step).

The loss is DPO over the pooled pairs, as MMedPO's comparison trains POVID. (POVID's own objective puts
both dispreferred log-ratios in one sigmoid and anneals the image noise; the pooled form keeps the
comparison with MMedPO's pooled D_t and D_v on the same footing.)
"""

from __future__ import annotations

import hashlib
import io
import logging
import zlib
from pathlib import Path
from typing import Any

from baselines.dpo import DPO
from harness.errors import HarnessError
from harness.hallucinate import hallucinate
from harness.io import atomic_write
from harness.methods.base import PairContext
from harness.preferences import PreferencePair, write_pairs

log = logging.getLogger(__name__)

IMAGES_DIR = "images"
NOISED_DIR = "povid_noised"
PAIRS_FILE = "povid_pairs.jsonl"


class POVID(DPO):
    """Preference Optimization in VLLM with AI-generated Dispreferences; loss: DPO (Rafailov et al. Eq. 7).

        loss = -log sigmoid(beta * h)  over text pairs (y_w vs hallucinated y_l on x)
                                       and visual pairs (y_w on x vs y_w on the noised x*)

    Worked example: as DPO, beta = 0.1 and h = 3 give 0.554355.

    Builder options (``PairContext.options``): ``noise_step`` (500), ``num_steps`` (1000), ``kinds``
    (``("text", "visual")``). Images are written under ``context.output_dir`` and the pairs' image paths
    are relative to it: train with ``image_root = context.output_dir``. Reruns reuse the written images.
    """

    name = "povid"
    citation = (
        "Zhou, Cui, Rafailov, Finn, Yao. Aligning Modalities in Vision Large Language Models via Preference "
        "Fine-tuning. arXiv:2402.11411"
    )
    pair_kinds = ("text", "visual")

    def build_pairs(self, context: PairContext) -> list[PreferencePair]:
        from tqdm.auto import tqdm

        options = {"noise_step": 500, "num_steps": 1000, "kinds": ("text", "visual")}
        unknown_keys = set(context.options) - set(options)
        if unknown_keys:
            raise HarnessError(f"method 'povid': unknown option(s) {', '.join(sorted(unknown_keys))} "
                               f"(known: {', '.join(options)})")
        options.update(context.options)
        if isinstance(options["kinds"], str):  # from the CLI: --option kinds=text,visual
            options["kinds"] = tuple(k.strip() for k in options["kinds"].split(",") if k.strip())
        unknown = set(options["kinds"]) - {"text", "visual"}
        if unknown:
            raise HarnessError(f"method 'povid': unknown pair kinds {sorted(unknown)} (use text, visual)")
        output_dir = Path(context.output_dir)
        pairs: list[PreferencePair] = []
        for index, sample in enumerate(tqdm(context.samples, desc="povid pairs", unit="sample")):
            sample_id = str(sample.get("id", index))
            answer = str(sample["answer"]).strip()
            prompt = _prompt(context.task, sample)
            image_name, image = _save_original(sample.get("image"), output_dir, sample_id)
            if "text" in options["kinds"]:
                seed = _seed(context.seed, sample_id)
                pairs.append(PreferencePair(
                    id=f"{sample_id}-text", image=image_name, prompt=prompt, chosen=answer,
                    rejected=hallucinate(answer, seed=seed, question=str(sample.get("question", ""))),
                    kind="text", source="povid-hallucination"))
            if "visual" in options["kinds"]:
                noised = _save_noised(image, image_name, output_dir, options, _seed(context.seed, image_name))
                pairs.append(PreferencePair(
                    id=f"{sample_id}-visual", image=image_name, prompt=prompt, chosen=answer, rejected=answer,
                    rejected_image=noised, kind="visual", source=f"povid-diffusion-{options['noise_step']}"))
        write_pairs(output_dir / PAIRS_FILE, pairs)
        log.info("povid: %d pairs written to %s", len(pairs), output_dir / PAIRS_FILE)
        return pairs


def _seed(seed: int, key: str) -> int:
    return (zlib.crc32(key.encode()) + seed) % 2**31


def _prompt(task: Any, sample: dict) -> str:
    if task is not None and hasattr(task, "prompt"):
        return task.prompt(sample)
    return str(sample["question"])


def _as_pil(value: Any, sample_id: str):
    """A sample's image: a PIL image, or ``datasets``' undecoded ``{"path", "bytes"}``, or a path."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return value.convert("RGB")
    if isinstance(value, dict) and (value.get("bytes") or value.get("path")):
        source = io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"]
        with Image.open(source) as image:
            return image.convert("RGB")
    if isinstance(value, (str, Path)):
        with Image.open(value) as image:
            return image.convert("RGB")
    raise HarnessError(f"method 'povid': sample {sample_id} has no usable image (got {type(value).__name__})")


def _save_png(image: Any, path: Path) -> None:
    with atomic_write(path, "wb") as handle:
        image.save(handle, format="PNG")


def _save_original(value: Any, output_dir: Path, sample_id: str) -> tuple[str, Any]:
    """Copy the image once per distinct content (many questions share an image); returns (relative name, image)."""
    image = _as_pil(value, sample_id)
    digest = hashlib.sha1(image.tobytes() + repr(image.size).encode()).hexdigest()[:16]
    name = f"{IMAGES_DIR}/{digest}.png"
    if not (output_dir / name).is_file():
        _save_png(image, output_dir / name)
    return name, image


def _save_noised(image: Any, image_name: str, output_dir: Path, options: dict, seed: int) -> str:
    from harness.imaging import diffusion_noise

    name = f"{NOISED_DIR}/{Path(image_name).stem}-k{options['noise_step']}.png"
    if not (output_dir / name).is_file():
        noised = diffusion_noise(image, step=int(options["noise_step"]), num_steps=int(options["num_steps"]), seed=seed)
        _save_png(noised, output_dir / name)
    return name
