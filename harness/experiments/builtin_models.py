"""The built-in models, trained on first use: ``tiny`` (tests, speed) and ``testbed`` (method comparisons).

Both are the LLaVA-architecture model of :mod:`harness.models.tiny` (untrained there), trained here through
the shared SFT core on the synthetic suite's ``sft`` split, which neither the preference pairs (``train``)
nor the evaluation (``test``) ever see. This module sits above both ``harness.models`` and
``harness.training``: the models package only builds untrained models, and the registry names the loaders
here as lazy ``module:attr`` strings.

``testbed`` is built to have the problem MMedPO addresses (docs/testbed.md, measured by ``harness
diagnose``): it sees the lesion, can read it, and still reports the text prior. Two SFT stages, no output
ever edited:

1. *Reading*: a lesion-enriched mix (``lesion_share`` of the cases have a lesion) of true VQA answers and
   reports, so the language model learns to read kind, side, level and size off its 16 image tokens.
2. *The text prior*: a shorter stage on the suite's natural mix (two thirds normal films) in which a
   ``deny_share`` of the lesion films carry the normal report, as in report corpora where findings are
   templated away or under-called; the VQA records stay true. The model keeps reading (its VQA answers and
   the reports that do name a lesion stay right) but its reports deny about half the lesions it sees.

A model is built in a temporary folder beside its cache folder ``HARNESS_HOME/models/<name>-<version>/``
and renamed into place when trained, with a ``<name>.json`` stamp of the configuration it was built from and
of its weights' content fingerprint; a changed configuration, or weights changed in the cache folder, rebuild it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.core.errors import HarnessError
from harness.models.tiny import TinyConfig

if TYPE_CHECKING:
    from harness.experiments.sft import SFTRecord
    from harness.models.hf import HFVisionLanguageModel
    from harness.training.config import TrainConfig

log = logging.getLogger(__name__)

# Bumped when the recipe changes in a way the configuration stamp does not show (data, splits, code).
VERSIONS = {"tiny": "2", "testbed": "2"}


def testbed_config(**overrides: Any) -> TinyConfig:
    """The testbed's architecture and SFT recipe (measured choices in docs/testbed.md)."""
    defaults: dict[str, Any] = dict(
        image_size=64, patch_size=16, vision_hidden=64, vision_layers=2, text_hidden=96, text_layers=2, heads=4,
        train_vqa=2000, train_report=2000, lesion_share=0.8, steps=1000, lr=1e-3, batch_size=32,
        prior_steps=300, deny_share=0.5, deny_spread=0.8, prior_lr=3e-4,
    )
    return TinyConfig(**{**defaults, **overrides})


DEFAULT_CONFIGS = {"tiny": TinyConfig, "testbed": testbed_config}


def model_dir(name: str) -> Path:
    """The cache folder of built-in model ``name`` (``tiny`` or ``testbed``)."""
    from harness.core.paths import harness_home

    _check_name(name)
    return harness_home() / "models" / f"{name}-{VERSIONS[name]}"


def _check_name(name: str) -> None:
    if name not in VERSIONS:
        raise HarnessError(f"no built-in model '{name}' (built-in: {', '.join(VERSIONS)})")


# The suite draws a lesion for about one case in three (harness.tasks.synth.LESION_COUNT_P); an enriched SFT mix
# reads its lesion cases from an sft split large enough to hold them at this rate, rounded up to 500 cases.
_LESION_RATE_FLOOR = 0.30


def _sft_cases(config: TinyConfig):
    """The sft split's folder, the stage-1 cases (enriched to ``lesion_share`` when set) and the natural-mix
    cases of the second stage (the next cases of the split, in order)."""
    import math

    from harness.tasks.synth import load_cases

    n = max(config.train_vqa, config.train_report)
    if config.lesion_share is None:
        folder, cases = load_cases("sft", seed=config.seed, sft_size=2 * n if config.prior_steps else n)
        return folder, cases[:n], cases[n:2 * n]
    if not 0.0 <= config.lesion_share <= 1.0:
        raise HarnessError(f"built-in model: lesion_share must be in [0, 1], got {config.lesion_share}")
    wanted = int(round(config.lesion_share * n))
    size = max(2 * n, int(math.ceil(wanted / _LESION_RATE_FLOOR / 500)) * 500)
    folder, cases = load_cases("sft", seed=config.seed, sft_size=size)
    lesion = [c for c in cases if c.lesions]
    normal = [c for c in cases if not c.lesions]
    if len(lesion) < wanted or len(normal) < n - wanted:
        raise HarnessError(f"built-in model: the sft split of {size} cases holds {len(lesion)} lesion cases, "
                           f"fewer than lesion_share={config.lesion_share} of {n} needs")
    chosen = lesion[:wanted] + normal[:n - wanted]
    order = np.random.default_rng([config.seed, 0x1E5]).permutation(len(chosen))
    return folder, [chosen[i] for i in order], cases[n:2 * n]


def sft_records(config: TinyConfig) -> list[SFTRecord]:
    """Stage-1 SFT data: ``train_vqa`` synth_vqa items, then ``train_report`` synth_report items of the ``sft``
    split (a lesion-enriched mix when ``lesion_share`` is set).

    With ``mismatch_share`` > 0 that share of records (drawn with the config's seed) keeps its image but
    takes the text of another, random case of the mix: its question and answer, or its report.
    """
    from harness.experiments.sft import SFTRecord
    from harness.tasks.base import DEFAULT_REPORT_INSTRUCTION
    from harness.tasks.synth import SYNTH_REPORT, SYNTH_VQA

    if not 0.0 <= config.mismatch_share < 1.0:
        raise HarnessError(f"built-in model: mismatch_share must be in [0, 1), got {config.mismatch_share}")
    folder, cases, _ = _sft_cases(config)
    text = mismatched_text_sources(len(cases), config.mismatch_share, config.seed)
    report_prompt = SYNTH_REPORT.prompt({"answer_type": "report", "question": DEFAULT_REPORT_INSTRUCTION})
    records = []
    for index, case in enumerate(cases[:config.train_vqa]):
        source = cases[text["vqa"][index]]
        prompt = SYNTH_VQA.prompt({"answer_type": source.answer_type, "question": source.question})
        records.append(SFTRecord(str(folder / case.image), prompt, source.answer))
    for index, case in enumerate(cases[:config.train_report]):
        records.append(SFTRecord(str(folder / case.image), report_prompt, cases[text["report"][index]].report))
    return records


def prior_records(config: TinyConfig) -> list[SFTRecord]:
    """Stage-2 SFT data (``prior_steps`` > 0): the next cases of the sft split in the suite's natural mix,
    true VQA answers, and reports of which a ``deny_share`` of the lesion films' (drawn with the seed, more
    often for small lesions: ``denied_reports``) are the normal report: the text prior, learned from data,
    never written into an output."""
    from harness.experiments.sft import SFTRecord
    from harness.tasks.base import DEFAULT_REPORT_INSTRUCTION
    from harness.tasks.synth import SYNTH_REPORT, SYNTH_VQA, write_report

    if not 0.0 <= config.deny_share <= 1.0:
        raise HarnessError(f"built-in model: deny_share must be in [0, 1], got {config.deny_share}")
    folder, _, cases = _sft_cases(config)
    denied = denied_reports(cases, config.deny_share, config.seed, config.deny_spread)
    report_prompt = SYNTH_REPORT.prompt({"answer_type": "report", "question": DEFAULT_REPORT_INSTRUCTION})
    records = [SFTRecord(str(folder / c.image), SYNTH_VQA.prompt({"answer_type": c.answer_type,
                                                                   "question": c.question}), c.answer)
               for c in cases[:config.train_vqa]]
    normal = write_report([])
    records += [SFTRecord(str(folder / c.image), report_prompt, normal if denied[i] else c.report)
                for i, c in enumerate(cases[:config.train_report])]
    return records


def denied_reports(cases, share: float, seed: int, spread: float = 0.0) -> np.ndarray:
    """Which cases' reports the prior stage replaces by the normal report (never a normal case's: its report
    is already the normal one).

    A lesion case is denied with probability ``share + spread * (0.5 - rank)``, clipped to [0, 1], where
    ``rank`` in [0, 1] orders the lesion cases by their largest lesion's box area: small findings are
    under-called more often than large ones, and over all lesion cases the denied share is ``share``. With
    ``spread`` 0 every lesion case is denied with probability ``share``.
    """
    rng = np.random.default_rng([seed, 0xDE1])
    draws = rng.random(len(cases))
    lesion = [i for i, c in enumerate(cases) if c.lesions]
    area = np.array([max(x.bbox[2] * x.bbox[3] for x in cases[i].lesions) for i in lesion], dtype=np.float64)
    rank = np.empty(len(lesion))
    rank[np.argsort(area, kind="stable")] = np.arange(len(lesion)) / max(len(lesion) - 1, 1)
    chance = np.clip(share + spread * (0.5 - rank), 0.0, 1.0)
    denied = np.zeros(len(cases), dtype=bool)
    denied[lesion] = draws[lesion] < chance
    return denied


def mismatched_text_sources(n: int, share: float, seed: int) -> dict[str, np.ndarray]:
    """For each task, the case whose text each of ``n`` images is trained on: itself, or for a ``share`` of
    them (independently per task) another case drawn uniformly."""
    rng = np.random.default_rng([seed, 0x5F7])
    sources = {}
    for task in ("vqa", "report"):
        source = np.arange(n)
        swapped = rng.random(n) < share
        other = rng.integers(0, n - 1, size=n) if n > 1 else np.zeros(n, dtype=int)
        other = other + (other >= source)  # never the case itself
        source[swapped] = other[swapped]
        sources[task] = source
    return sources


def train_config(config: TinyConfig) -> TrainConfig:
    """The shared core's options for stage 1: full fine-tuning from scratch (the random vision tower stays
    frozen)."""
    from harness.training.config import TrainConfig

    return TrainConfig(
        lr=config.lr, epochs=config.epochs, max_steps=config.steps, batch_size=config.batch_size, lora=False,
        train_projector=True, seed=config.seed, max_length=256, warmup_ratio=0.1, schedule="cosine", log_every=50,
    )


def prior_train_config(config: TinyConfig) -> TrainConfig:
    """Stage 2's options: the same core, ``prior_steps`` steps at ``prior_lr`` with a short warm-up."""
    import dataclasses

    return dataclasses.replace(train_config(config), lr=config.prior_lr, max_steps=config.prior_steps,
                               warmup_ratio=0.05, seed=config.seed + 1)


def _is_complete(folder: Path, name: str, config: TinyConfig) -> bool:
    from harness.core.io import read_json

    stamp = folder / f"{name}.json"
    if not (folder / "config.json").is_file() or not stamp.is_file():
        return False
    try:
        saved = read_json(stamp)
    except HarnessError:
        return False
    if saved.get("config") != config.key():
        return False
    from harness.models.fingerprint import model_fingerprint

    # the stamp names the weights the build made: weights changed in the cache folder are not that model
    if saved.get("weights") not in (None, model_fingerprint(folder)):
        log.warning("the cached %s model's weights differ from the ones its build recorded: rebuilding it", name)
        return False
    return True


def ensure_builtin(name: str, *, force: bool = False, config: TinyConfig | None = None) -> Path:
    """The trained folder of built-in model ``name``, built and trained on first use and reused afterwards.

    The build happens in a temporary folder beside the cache and is renamed into place when complete, so
    an interrupted build leaves nothing that a later call would mistake for a finished model.
    """
    from harness.core.io import write_json
    from harness.experiments import sft
    from harness.models.hf import load_hf_model
    from harness.models.tiny import build_tiny_model

    _check_name(name)
    config = config or DEFAULT_CONFIGS[name]()
    dest = model_dir(name)
    if not force and _is_complete(dest, name, config):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        start = time.perf_counter()
        log.info("building the %s model in %s (once; later calls reuse it)", name, dest)
        base = build_tiny_model(work / "base", config=config)
        records = sft_records(config)
        options = train_config(config)
        model = load_hf_model(base, dtype=options.precision, device="cpu")
        trained = Path(sft.train_sft(model, records, work / "sft", options))
        stamp = {"version": VERSIONS[name], "config": config.key(), "records": len(records)}
        if config.prior_steps:
            prior = prior_records(config)
            options = prior_train_config(config)
            model = load_hf_model(trained, dtype=options.precision, device="cpu")
            trained = Path(sft.train_sft(model, prior, work / "prior", options))
            stamp["prior_records"] = len(prior)
        stamp["build_seconds"] = round(time.perf_counter() - start, 1)
        from harness.models.fingerprint import model_fingerprint

        stamp["weights"] = model_fingerprint(trained)
        write_json(trained / f"{name}.json", stamp)
        if dest.exists():
            shutil.rmtree(dest)
        try:
            os.replace(trained, dest)
        except OSError:
            if not _is_complete(dest, name, config):  # a concurrent build finished first: keep it
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("%s model ready in %s", name, dest)
    return dest


def ensure_tiny(*, force: bool = False, config: TinyConfig | None = None) -> Path:
    """The trained ``tiny`` model's folder (``HARNESS_HOME/models/tiny-<version>/``)."""
    return ensure_builtin("tiny", force=force, config=config)


def ensure_testbed(*, force: bool = False, config: TinyConfig | None = None) -> Path:
    """The trained ``testbed`` model's folder (``HARNESS_HOME/models/testbed-<version>/``)."""
    return ensure_builtin("testbed", force=force, config=config)


def tiny_dir() -> Path:
    return model_dir("tiny")


def _load(name: str, kwargs: dict[str, Any]) -> HFVisionLanguageModel:
    from harness.models.hf import load_hf_model

    force = bool(kwargs.pop("force", False))
    kwargs.setdefault("name", name)
    return load_hf_model(ensure_builtin(name, force=force), **kwargs)


def load_tiny(**kwargs: Any) -> HFVisionLanguageModel:
    """The registered ``tiny`` model: ``ensure_tiny`` then ``load_hf_model`` (kwargs go to the loader)."""
    return _load("tiny", kwargs)


def load_testbed(**kwargs: Any) -> HFVisionLanguageModel:
    """The registered ``testbed`` model: ``ensure_testbed`` then ``load_hf_model`` (kwargs go to the loader)."""
    return _load("testbed", kwargs)
