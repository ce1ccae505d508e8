"""``harness diagnose``: does the base see the lesion, does it say what it sees, can its image move it?

MMedPO's premise is a model that receives the visual evidence but answers from the text prior. Whether a
base model has that problem is measured here, on the synthetic suite (cases with known lesions, in
``harness.tasks.synth``), as eight properties:

- ``probe_presence_accuracy`` / ``probe_side_accuracy``: a linear probe (L2 logistic regression,
  ``fit_probe``) on the image tokens the language model receives (the projector's output, flattened) is fit
  on ``probe_cases`` cases of the ``sft`` split and scored on the measured ``test`` cases: lesion present
  or not (all cases), and right or left (one-lesion cases). High values say the evidence reaches the LM.
- ``report_names_lesion``: of the one-lesion cases, the share whose greedy report asserts any finding.
- ``side_accuracy_when_named`` / ``kind_accuracy_when_named``: of those reports, the share whose first
  asserted finding has the lesion's side / kind. High values say the LM can read the evidence.
- ``vqa_presence_accuracy``: "Is there a <kind>?" asked of every case (a lesion case about its first
  lesion's kind, answer yes; a normal case about a seeded random kind, answer no), scored as balanced
  accuracy (mean of the yes and the no cases' accuracy), so the "no" prior alone scores 0.5.
- ``report_names_given_vqa_yes``: P(the report names a lesion | the model answers yes to its presence),
  on one-lesion cases. Below 1 means the report's text prior overrides what the VQA answer shows it sees.
- ``blank_image_gap``: ``vqa_presence_accuracy`` minus the same with every image blanked.
- ``median_erase_margin``: on lesion cases, the median of log p(true report | film) − log p(true report |
  the same film without its lesions) (``render_case(erase=True)``: same anatomy and pixel noise), in nats
  summed over the report's tokens. ``median_noise_margin``: the same with the lesion region noised as the
  default visual pairs noise it (forward diffusion inside the mask at ``harness.curation.imaging.LESION_NOISE_STEP`` of
  ``LESION_NOISE_SCHEDULE``: DDPM's linear schedule at step 500, 28% of the signal kept).
  A visual pair whose two images give the true report the same probability carries no signal.

``TARGETS`` holds the default testbed's targets (docs/testbed.md); ``diagnose`` reports each property,
whether it meets its target, and the counts it rests on.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from harness.core.errors import HarnessError
from harness.core.images import open_image, to_rgb
from harness.core.options import option_field
from harness.curation.imaging import LESION_NOISE_SCHEDULE, LESION_NOISE_STEP

log = logging.getLogger(__name__)

# property -> (comparison, threshold): what the default testbed must show (docs/testbed.md)
TARGETS: dict[str, tuple[str, float]] = {
    "probe_presence_accuracy": (">=", 0.95),
    "probe_side_accuracy": (">=", 0.90),
    "side_accuracy_when_named": (">=", 0.85),
    "kind_accuracy_when_named": (">=", 0.80),
    "report_names_lesion": ("<=", 0.60),
    "vqa_presence_accuracy": (">=", 0.85),
    "median_erase_margin": (">=", 1.0),
    "median_noise_margin": (">=", 1.0),
}
PROPERTIES = (
    "probe_presence_accuracy", "probe_side_accuracy", "report_names_lesion", "side_accuracy_when_named",
    "kind_accuracy_when_named", "vqa_presence_accuracy", "report_names_given_vqa_yes", "blank_image_gap",
    "median_erase_margin", "median_noise_margin",
)


@dataclass
class DiagnoseConfig:
    """What ``diagnose`` measures on (every field is a ``harness diagnose`` flag)."""

    cases: int = option_field(2000, "test-split cases measured (the first N of the suite's 3,000-case test split)")
    probe_cases: int = option_field(2000, "sft-split cases the linear probes are fit on")
    batch_size: int = option_field(64, "images per forward or generation batch")
    seed: int = option_field(0, "seed of the synthetic suite, the VQA probes' absent kinds and the noise")
    noise_step: int = option_field(LESION_NOISE_STEP, "diffusion step of the visual-pair noise measured (of 1000)")
    noise_schedule: str = option_field(LESION_NOISE_SCHEDULE, "diffusion schedule of that noise (linear, sigmoid)")

    def __post_init__(self) -> None:
        from harness.tasks.synth import VQA_TEST_SIZE

        if not 10 <= self.cases <= VQA_TEST_SIZE:
            raise HarnessError(f"diagnose: --cases must be in [10, {VQA_TEST_SIZE}], got {self.cases}")
        if self.probe_cases < 10:
            raise HarnessError(f"diagnose: --probe-cases must be at least 10, got {self.probe_cases}")
        if self.batch_size < 1:
            raise HarnessError(f"diagnose: --batch-size must be positive, got {self.batch_size}")


# ------------------------------------------------------------------------------------ pure computations


def fit_probe(train_x: np.ndarray, train_y: np.ndarray, *, l2: float = 1.0, steps: int = 200):
    """An L2-regularised logistic regression (features standardised on ``train_x``) fit by L-BFGS;
    returns ``predict(x) -> 0/1 array``. ``l2`` is the penalty on the summed squared weights."""
    import torch

    x = np.asarray(train_x, dtype=np.float64)
    y = np.asarray(train_y, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    xt = torch.from_numpy((x - mean) / scale)
    yt = torch.from_numpy(y)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        logits = xt @ w + b
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, yt, reduction="sum") + l2 * (w * w).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    weights, bias = w.detach().numpy(), float(b.detach())

    def predict(data: np.ndarray) -> np.ndarray:
        return ((((np.asarray(data, dtype=np.float64) - mean) / scale) @ weights + bias) > 0).astype(int)

    return predict


def probe_accuracy(train_x, train_y, test_x, test_y, *, l2: float = 1.0) -> float:
    """Held-out accuracy of ``fit_probe``; NaN when the training labels have one class or nothing to test."""
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    if len(test_y) == 0 or len(set(train_y.tolist())) < 2:
        return float("nan")
    predict = fit_probe(train_x, train_y, l2=l2)
    return float((predict(test_x) == test_y).mean())


def yes_no(answer: str) -> bool | None:
    """True for an answer starting with "yes", False for "no", None otherwise (unreadable)."""
    import re

    match = re.match(r"\W*(yes|no)\b", str(answer).lower())
    return None if match is None else match.group(1) == "yes"


def report_properties(reports: Sequence[str], lesions: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """On the one-lesion cases: the share of reports naming a finding, and of those the share whose first
    asserted finding has the lesion's side / kind. ``lesions[i]``: case i's lesions (``kind``, ``side``)."""
    from harness.findings.synthetic import read_report

    named = side = kind = one = 0
    flags = []
    for report, case_lesions in zip(reports, lesions):
        if len(case_lesions) != 1:
            flags.append(None)
            continue
        one += 1
        truth = case_lesions[0]
        asserted = read_report(report).asserted
        flags.append(bool(asserted))
        if asserted:
            named += 1
            side += asserted[0].side == _get(truth, "side")
            kind += asserted[0].kind == _get(truth, "kind")
    return {"one_lesion_cases": one, "named": named, "names_flags": flags,
            "report_names_lesion": _share(named, one), "side_accuracy_when_named": _share(side, named),
            "kind_accuracy_when_named": _share(kind, named)}


def presence_accuracy(answers: Sequence[str], expected: Sequence[bool]) -> dict[str, Any]:
    """Balanced accuracy of yes/no answers (an unreadable answer counts as wrong)."""
    said = [yes_no(a) for a in answers]
    pos = [s is True for s, e in zip(said, expected) if e]
    neg = [s is False for s, e in zip(said, expected) if not e]
    sensitivity, specificity = _share(sum(pos), len(pos)), _share(sum(neg), len(neg))
    balanced = float(np.nanmean([sensitivity, specificity])) if pos or neg else float("nan")
    return {"balanced_accuracy": balanced, "sensitivity": sensitivity, "specificity": specificity,
            "yes": [s is True for s in said], "n_present": len(pos), "n_absent": len(neg)}


def conditional_share(flags: Sequence[bool | None], given: Sequence[bool]) -> tuple[float, int]:
    """P(flag | given) over the items whose flag is not None: (share, number of items given)."""
    kept = [f for f, g in zip(flags, given) if f is not None and g]
    return _share(sum(kept), len(kept)), len(kept)


def median_margin(clean: Sequence[float], other: Sequence[float]) -> dict[str, float]:
    """Median, quartiles and mean of ``clean - other`` (log-probabilities of the same texts)."""
    diff = np.asarray(clean, dtype=np.float64) - np.asarray(other, dtype=np.float64)
    if diff.size == 0:
        return {"median": float("nan"), "q1": float("nan"), "q3": float("nan"), "mean": float("nan"), "n": 0}
    q1, median, q3 = np.percentile(diff, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "mean": float(diff.mean()),
            "n": int(diff.size)}


def _get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, dict) else getattr(item, key)


def _share(k: int, n: int) -> float:
    return float(k) / n if n else float("nan")


def check_targets(properties: dict[str, float], targets: dict[str, tuple[str, float]] = TARGETS) -> dict:
    """``{property: {"target": ">= 0.95", "met": bool}}`` (a NaN value does not meet its target)."""
    out = {}
    for name, (op, threshold) in targets.items():
        value = properties.get(name)
        ok = value is not None and not math.isnan(value) and (value >= threshold if op == ">=" else value <= threshold)
        out[name] = {"target": f"{op} {threshold:g}", "met": bool(ok)}
    return out


# ------------------------------------------------------------------------------------ the model's side


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield range(start, min(start + size, n))


def image_features(model: Any, images: Sequence[Any], batch_size: int) -> np.ndarray:
    """The image tokens the language model receives (the projector's output), flattened per image."""
    import torch

    inner = getattr(model.model, "model", model.model)
    if not hasattr(inner, "get_image_features"):
        raise HarnessError(f"diagnose: model '{model.name}' exposes no image features to probe (LLaVA-style "
                           "models do)")
    rows = []
    with torch.inference_mode():
        for index in _batches(len(images), batch_size):
            pixels = model.processor.image_processor([to_rgb(images[i]) for i in index],
                                                     return_tensors="pt")["pixel_values"]
            out = inner.get_image_features(pixel_values=pixels.to(model.device, model.model.dtype))
            out = getattr(out, "pooler_output", out)
            if isinstance(out, (list, tuple)):
                out = torch.stack(list(out))
            rows.append(out.float().reshape(len(index), -1).cpu().numpy())
    return np.concatenate(rows)


def generate(model: Any, images: Sequence[Any], prompts: Sequence[str], *, max_new_tokens: int,
             batch_size: int, progress: Any = None) -> list[str]:
    from harness.models.base import GenerationConfig

    config = GenerationConfig(max_new_tokens=max_new_tokens)
    out: list[str] = []
    for index in _batches(len(images), batch_size):
        out += model.generate([images[i] for i in index], [prompts[i] for i in index], config)
        if progress is not None:
            progress.update(len(index))
    return out


def response_logps(model: Any, images: Sequence[Any], prompts: Sequence[str], responses: Sequence[str], *,
                   batch_size: int, progress: Any = None) -> np.ndarray:
    """log p(response | image, prompt), summed over the response tokens (end of turn included): the rows
    are encoded, padded and scored by the training core's own code (``RowEncoder``, ``Collator``,
    ``concatenated_forward``), so a margin here is the margin a preference pair's loss sees."""
    import torch

    from harness.training.batch import Collator
    from harness.training.encoding import RowEncoder
    from harness.training.logps import concatenated_forward

    encoder = RowEncoder(model.processor, model.format_prompt, max_length=4096)
    collate = Collator(model.tokenizer.pad_token_id or 0)
    out: list[float] = []
    model.model.eval()
    for index in _batches(len(images), batch_size):
        items = [{"id": str(i), "weight": 1.0, "shared": [],
                  "chosen": encoder.encode(to_rgb(images[i]), prompts[i], responses[i], row_id=str(i))}
                 for i in index]
        batch = collate(items).to(model.device)
        with torch.inference_mode():
            out += concatenated_forward(model.model, batch)["chosen"]["sum"].float().tolist()
        if progress is not None:
            progress.update(len(index))
    return np.asarray(out, dtype=np.float64)


def _load_images(folder, cases, *, erase: bool = False, seed: int = 0, image_size: int = 64) -> list[Any]:
    from PIL import Image

    from harness.tasks.synth import generate_case

    images = []
    for case in cases:
        if erase:
            index = int(case.id.rsplit("-", 1)[1])
            pixels, _, _ = generate_case("test", index, seed=seed, image_size=image_size, erase=True)
            images.append(to_rgb(Image.fromarray(pixels, mode="L")))
        else:
            images.append(open_image(folder / case.image, record=case.id))
    return images


def _noised(folder, cases, images, *, step: int, schedule: str, seed: int) -> list[Any]:
    from PIL import Image

    from harness.curation.imaging import diffusion_noise

    out = []
    for case, image in zip(cases, images):
        with Image.open(folder / case.mask) as mask:
            region = np.asarray(mask, dtype=np.float64) / 255.0
        item_seed = zlib.crc32(f"{seed}:{case.id}".encode())
        out.append(diffusion_noise(image, region, step=step, schedule=schedule, seed=item_seed))
    return out


def diagnose(model: Any, config: DiagnoseConfig | None = None, *, progress: bool = True) -> dict[str, Any]:
    """Measure ``PROPERTIES`` of a loaded model (``harness.models.load_model``); see the module docstring."""
    from tqdm.auto import tqdm

    from harness.tasks.base import DEFAULT_REPORT_INSTRUCTION
    from harness.tasks.synth import KINDS, SYNTH_REPORT, SYNTH_VQA, load_cases

    config = config or DiagnoseConfig()
    folder, cases = load_cases("test", task_name="synth_report", seed=config.seed,
                               test_size=SYNTH_REPORT.options["test_size"])
    cases = cases[:config.cases]
    sft_folder, sft_cases = load_cases("sft", task_name="synth_report", seed=config.seed,
                                       sft_size=max(config.probe_cases, 2000))
    sft_cases = sft_cases[:config.probe_cases]
    images = _load_images(folder, cases)
    lesions = [c.lesions for c in cases]
    lesion_cases = [i for i, c in enumerate(cases) if c.lesions]
    rng = np.random.default_rng([config.seed, 0xD1A6])
    absent = [str(rng.choice([k for k in KINDS if k not in {x.kind for x in c.lesions}])) for c in cases]
    vqa_kinds = [c.lesions[0].kind if c.lesions else absent[i] for i, c in enumerate(cases)]
    vqa_prompts = [SYNTH_VQA.prompt({"answer_type": "closed", "question": f"Is there {_article(k)} {k}?"})
                   for k in vqa_kinds]
    expected = [bool(c.lesions) for c in cases]
    report_prompt = SYNTH_REPORT.prompt({"answer_type": "report", "question": DEFAULT_REPORT_INSTRUCTION})
    blank = [image.point(lambda _: 0) for image in images]
    lesion_images = [images[i] for i in lesion_cases]
    erased = _load_images(folder, [cases[i] for i in lesion_cases], erase=True, seed=config.seed)
    noised = _noised(folder, [cases[i] for i in lesion_cases], lesion_images, step=config.noise_step,
                     schedule=config.noise_schedule, seed=config.seed)
    truth = [cases[i].report for i in lesion_cases]
    total = len(sft_cases) + len(cases) * 4 + len(lesion_cases) * 3
    with tqdm(total=total, desc="diagnose", unit="item", disable=not progress) as bar:
        sft_images = _load_images(sft_folder, sft_cases)
        train_x = image_features(model, sft_images, config.batch_size)
        test_x = image_features(model, images, config.batch_size)
        bar.update(len(sft_cases) + len(cases))
        reports = generate(model, images, [report_prompt] * len(cases), max_new_tokens=96,
                           batch_size=config.batch_size, progress=bar)
        answers = generate(model, images, vqa_prompts, max_new_tokens=4, batch_size=config.batch_size, progress=bar)
        blank_answers = generate(model, blank, vqa_prompts, max_new_tokens=4, batch_size=config.batch_size,
                                 progress=bar)
        logp = {name: response_logps(model, shown, [report_prompt] * len(shown), truth,
                                     batch_size=config.batch_size, progress=bar)
                for name, shown in (("clean", lesion_images), ("erased", erased), ("noised", noised))}
    sft_lesions = [c.lesions for c in sft_cases]
    one_train = [i for i, les in enumerate(sft_lesions) if len(les) == 1]
    one_test = [i for i, les in enumerate(lesions) if len(les) == 1]
    presence = probe_accuracy(train_x, [int(bool(x)) for x in sft_lesions], test_x, [int(bool(x)) for x in lesions])
    side = probe_accuracy(train_x[one_train], [int(sft_lesions[i][0].side == "right") for i in one_train],
                          test_x[one_test], [int(lesions[i][0].side == "right") for i in one_test])
    said = report_properties(reports, lesions)
    vqa = presence_accuracy(answers, expected)
    vqa_blank = presence_accuracy(blank_answers, expected)
    given_yes, n_yes = conditional_share(said["names_flags"], vqa["yes"])
    erase_margin = median_margin(logp["clean"], logp["erased"])
    noise_margin = median_margin(logp["clean"], logp["noised"])
    properties = {
        "probe_presence_accuracy": presence, "probe_side_accuracy": side,
        "report_names_lesion": said["report_names_lesion"],
        "side_accuracy_when_named": said["side_accuracy_when_named"],
        "kind_accuracy_when_named": said["kind_accuracy_when_named"],
        "vqa_presence_accuracy": vqa["balanced_accuracy"], "report_names_given_vqa_yes": given_yes,
        "blank_image_gap": vqa["balanced_accuracy"] - vqa_blank["balanced_accuracy"],
        "median_erase_margin": erase_margin["median"], "median_noise_margin": noise_margin["median"],
    }
    return {
        "model": getattr(model, "name", "?"),
        "config": asdict(config),
        "properties": properties,
        "targets": check_targets(properties),
        "details": {
            "cases": len(cases), "lesion_cases": len(lesion_cases), "one_lesion_cases": said["one_lesion_cases"],
            "reports_naming_a_finding": said["named"], "probe_train_cases": len(sft_cases),
            "vqa": {k: vqa[k] for k in ("sensitivity", "specificity", "n_present", "n_absent")},
            "vqa_blank": {k: vqa_blank[k] for k in ("sensitivity", "specificity")},
            "vqa_yes_one_lesion_cases": n_yes,
            "erase_margin": erase_margin, "noise_margin": noise_margin,
            "mean_logp_true_report": {k: float(v.mean()) for k, v in logp.items()},
        },
    }


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"
