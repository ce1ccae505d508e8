"""A trained model reused by every run that would train exactly the same thing.

A run's training is decided by the base weights, the pairs, the method's loss hyperparameters and the
training options that shape results (``harness.experiments.pipeline.NOT_RESULT_SHAPING`` lists the ones that do not).
A study trains such duplicates by design: the learning-rate sweep trains every rate at the study's first
seed, and the first seed's compared run then trains the chosen rate again, on the same pairs with the same
seed, to evaluate it on the test split instead of the validation split. Training is deterministic given all
of the above, so the second training would reproduce the first model; it is copied instead.

``training_key`` digests that content (the pairs by their text and their images' bytes, the base model by
its weights' fingerprint, never a path or a run's name) with the versions of the packages that train.
``$HARNESS_HOME/trained/<key>.json`` names the run that trained it; the run's ``train/train_key.json`` must
hold the same key and its model must be complete (``config.json``), or the entry is ignored. The copy is made
of hard links where the filesystem allows (the files are only ever replaced, never written in place) and is
swapped into place whole (``harness.core.io.atomic_dir``). It is used inside ``reusing()`` only, which ``harness
study`` opens around its runs: a plain ``harness run`` trains every time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from harness.core.io import read_json, write_json

_active: ContextVar[bool] = ContextVar("harness_trained_cache", default=False)

log = logging.getLogger(__name__)
KEY_FILE = "train_key.json"
# what a reusing run copies from the training run's train/ folder (checkpoints are not needed once trained)
COPIED = ("model", "adapter", "metrics.jsonl", "train_config.json")
_PACKAGES = ("torch", "transformers", "peft", "accelerate")


def pairs_digest(pairs: list[Any]) -> str:
    """SHA-256 of the pairs in order: each pair's fields and its images' bytes (not their paths)."""
    from harness.models.fingerprint import file_digest

    digest = hashlib.sha256()
    for pair in pairs:
        fields = pair.as_dict()
        images = [fields.pop(name, None) for name in ("image", "rejected_image")]
        digest.update(json.dumps(fields, sort_keys=True, default=str).encode())
        for image in images:
            if isinstance(image, str) and Path(image).is_file():
                digest.update(file_digest(image).encode())
            else:  # no image, or one that is not a file (the loader fails on it later, as without reuse)
                digest.update(json.dumps(image).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def training_key(base_name: str, method: Any, pairs: list[Any], train: dict[str, Any],
                 ignored: set[str] | frozenset[str] = frozenset()) -> str:
    """The content key of a training run: base model (``name@fingerprint``: only the fingerprint counts), method
    name and hyperparameters, pairs, the training options except ``ignored`` ones, and the package versions."""
    from importlib import metadata

    import harness

    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    key = {"base_weights": base_name.rpartition("@")[2] or base_name, "method": method.name,
           "hparams": method.hparams, "pairs": pairs_digest(pairs),
           "train": {k: v for k, v in sorted(train.items()) if f"train.{k}" not in ignored},
           "harness": harness.__version__, "packages": versions}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:32]


@contextmanager
def reusing() -> Iterator[None]:
    """Record every training finished in this block and reuse one whose key matches (``harness study`` opens it;
    a plain ``harness run`` always trains)."""
    token = _active.set(True)
    try:
        yield
    finally:
        _active.reset(token)


def active() -> bool:
    return _active.get()


def _index(key: str) -> Path:
    from harness.core.paths import harness_home

    return harness_home() / "trained" / f"{key}.json"


def find(key: str) -> Path | None:
    """The ``train/`` folder of a finished run whose training had this key, or None."""
    from harness.core.paths import runs_dir

    entry = _index(key)
    if not entry.is_file():
        return None
    folder = runs_dir() / str(read_json(entry).get("run_id", "")) / "train"
    stamp = folder / KEY_FILE
    if not (folder / "model" / "config.json").is_file() or not stamp.is_file() or read_json(stamp).get("key") != key:
        return None  # the run was deleted, or retrained under other settings: not this training
    return folder


def remember(key: str, run_id: str, train_dir: Path) -> None:
    """Mark ``train_dir`` (run ``run_id``'s finished training) as the model of ``key``."""
    write_json(train_dir / KEY_FILE, {"key": key})
    write_json(_index(key), {"run_id": run_id})


def _link_or_copy(source: str, dest: str) -> None:
    try:
        os.link(source, dest)
    except OSError:  # another filesystem, or one without hard links
        shutil.copy2(source, dest)


def copy_into(source: Path, out: Path, key: str, source_run: str) -> Path:
    """Copy the reusable parts of training folder ``source`` into ``out`` (the model last, whole); returns the
    model folder. ``out/reused_from.json`` names the run it came from."""
    out.mkdir(parents=True, exist_ok=True)
    from harness.core.io import atomic_dir

    for name in COPIED:
        item = source / name
        if name == "model" or not item.exists():
            continue
        if item.is_dir():
            atomic_dir(out / name, lambda tmp, item=item: shutil.copytree(item, tmp, copy_function=_link_or_copy))
        else:
            shutil.copy2(item, out / name)
    write_json(out / "reused_from.json", {"run_id": source_run, "key": key})
    write_json(out / KEY_FILE, {"key": key})
    return atomic_dir(out / "model", lambda tmp: shutil.copytree(source / "model", tmp, copy_function=_link_or_copy))
