"""The built-in models, trained on first use: ``tiny`` (tests, speed) and ``testbed`` (method comparisons).

Both are the LLaVA-architecture model of :mod:`harness.models.tiny` (untrained there), trained here through
the shared SFT core on the synthetic suite's ``sft`` split, which neither the preference pairs (``train``)
nor the evaluation (``test``) ever see. This module sits above both ``harness.models`` and
``harness.training``: the models package only builds untrained models, and the registry names the loaders
here as lazy ``module:attr`` strings.

``testbed`` is built to have the problem preference methods are meant to fix (docs/testbed.md): it sees
64 image tokens (64 px, 8 px patches), enough to see most lesions, but a share of its SFT records pair an
image with another case's text (``mismatch_share``), as in noisy web-scale image-text data, so its answers
and reports are pulled toward the text prior: it misses findings and invents some.

A model is built in a temporary folder beside its cache folder ``HARNESS_HOME/models/<name>-<version>/``
and renamed into place when trained, with a ``<name>.json`` stamp of the configuration it was built from;
a changed configuration rebuilds it.
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

from harness.errors import HarnessError
from harness.models.tiny import TinyConfig

if TYPE_CHECKING:
    from harness.models.hf import HFVisionLanguageModel
    from harness.training.config import TrainConfig
    from harness.training.sft import SFTRecord

log = logging.getLogger(__name__)

# Bumped when the recipe changes in a way the configuration stamp does not show (data, splits, code).
VERSIONS = {"tiny": "2", "testbed": "1"}


def testbed_config(**overrides: Any) -> TinyConfig:
    """The testbed's architecture and SFT recipe (measured choices in docs/testbed.md)."""
    defaults: dict[str, Any] = dict(
        image_size=64, patch_size=8, vision_hidden=64, vision_layers=2, text_hidden=96, text_layers=2, heads=4,
        train_vqa=2000, train_report=2000, mismatch_share=0.25, epochs=4.0, lr=1e-3, batch_size=32,
    )
    return TinyConfig(**{**defaults, **overrides})


DEFAULT_CONFIGS = {"tiny": TinyConfig, "testbed": testbed_config}


def model_dir(name: str) -> Path:
    """The cache folder of built-in model ``name`` (``tiny`` or ``testbed``)."""
    from harness.paths import harness_home

    _check_name(name)
    return harness_home() / "models" / f"{name}-{VERSIONS[name]}"


def _check_name(name: str) -> None:
    if name not in VERSIONS:
        raise HarnessError(f"no built-in model '{name}' (built-in: {', '.join(VERSIONS)})")


def sft_records(config: TinyConfig) -> list[SFTRecord]:
    """SFT data: ``train_vqa`` synth_vqa items, then ``train_report`` synth_report items of the ``sft`` split.

    With ``mismatch_share`` > 0 that share of records (drawn with the config's seed) keeps its image but
    takes the text of another, random case of the split: its question and answer, or its report.
    """
    from harness.tasks.base import DEFAULT_REPORT_INSTRUCTION
    from harness.tasks.synth import SYNTH_REPORT, SYNTH_VQA, load_cases
    from harness.training.sft import SFTRecord

    if not 0.0 <= config.mismatch_share < 1.0:
        raise HarnessError(f"built-in model: mismatch_share must be in [0, 1), got {config.mismatch_share}")
    size = max(config.train_vqa, config.train_report)
    folder, cases = load_cases("sft", seed=config.seed, sft_size=size)
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
    """The shared core's options: full fine-tuning from scratch (the random vision tower stays frozen)."""
    from harness.training.config import TrainConfig

    return TrainConfig(
        lr=config.lr, epochs=config.epochs, batch_size=config.batch_size, lora=False, train_projector=True,
        seed=config.seed, max_length=256, warmup_ratio=0.1, schedule="cosine", log_every=50,
    )


def _is_complete(folder: Path, name: str, config: TinyConfig) -> bool:
    from harness.io import read_json

    stamp = folder / f"{name}.json"
    if not (folder / "config.json").is_file() or not stamp.is_file():
        return False
    try:
        return read_json(stamp).get("config") == config.key()
    except HarnessError:
        return False


def ensure_builtin(name: str, *, force: bool = False, config: TinyConfig | None = None) -> Path:
    """The trained folder of built-in model ``name``, built and trained on first use and reused afterwards.

    The build happens in a temporary folder beside the cache and is renamed into place when complete, so
    an interrupted build leaves nothing that a later call would mistake for a finished model.
    """
    from harness.io import write_json
    from harness.models.hf import load_hf_model
    from harness.models.tiny import build_tiny_model
    from harness.training import sft

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
        write_json(trained / f"{name}.json", {"version": VERSIONS[name], "config": config.key(),
                                             "records": len(records),
                                             "build_seconds": round(time.perf_counter() - start, 1)})
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
