"""Helpers for pair builders (built-in and plugins): a sample's prompt, its image, and where images go.

A builder writes every image its pairs point at under ``PairContext.output_dir`` and gives the pairs
paths relative to it (training then uses ``image_root = output_dir``). ``save_image`` names an image by
its content, so a rerun, or many questions about one image, reuse one file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.io import atomic_write

IMAGES_DIR = "images"


def task_prompt(task: Any, sample: dict) -> str:
    """The prompt the task shows the model for ``sample`` (its question when there is no task)."""
    if task is not None and hasattr(task, "prompt"):
        return task.prompt(sample)
    return str(sample["question"])


def load_image(value: Any, *, owner: str, sample_id: str):
    """A sample's image as RGB (``harness.core.images``): a PIL image, ``datasets``' undecoded ``{"path", "bytes"}``,
    or a path. An undecodable or oversized image is a one-line ``DataError`` naming the file and the sample."""
    from PIL import Image

    from harness.core.images import open_image

    if isinstance(value, dict) and (value.get("bytes") or value.get("path")):
        if value.get("bytes"):  # errors name the file the bytes came from, else the builder
            return open_image(value["bytes"], record=sample_id, where=value.get("path") or owner)
        return open_image(value["path"], record=sample_id)
    if isinstance(value, (str, Path)):
        return open_image(value, record=sample_id)
    if isinstance(value, Image.Image):
        return open_image(value, record=sample_id, where=owner)
    raise HarnessError(f"{owner}: sample {sample_id} has no usable image (got {type(value).__name__})")


def save_image(image: Any, output_dir: str | Path, folder: str = IMAGES_DIR) -> str:
    """Write ``image`` once (PNG, atomically) as ``<folder>/<content hash>.png`` under ``output_dir``;
    returns that relative path, the value a ``PreferencePair``'s ``image`` / ``rejected_image`` takes."""
    digest = hashlib.sha1(image.tobytes() + repr(image.size).encode()).hexdigest()[:16]
    name = f"{folder}/{digest}.png"
    path = Path(output_dir) / name
    if not path.is_file():
        with atomic_write(path, "wb") as handle:
            image.save(handle, format="PNG")
    return name


def save_sample_image(sample: dict, output_dir: str | Path, *, owner: str, sample_id: str) -> tuple[str, Any]:
    """The sample's image saved under ``output_dir`` (``save_image``): (relative path, RGB image)."""
    image = load_image(sample.get("image"), owner=owner, sample_id=sample_id)
    return save_image(image, output_dir), image


def check_pair_images(pairs: Any, image_root: str | Path | None, source: str | Path) -> None:
    """Every image a pair names exists (relative to ``image_root``): a one-line error naming the pair file,
    the record and the field, before a model loads or training writes anything."""
    from harness.core.errors import DataError

    root = Path(image_root) if image_root is not None else None
    for pair in pairs:
        for name in ("image", "rejected_image"):
            value = getattr(pair, name)
            if not value:
                continue
            path = Path(value) if root is None or Path(value).is_absolute() else root / value
            if not path.is_file():
                hint = "" if root is not None else " (relative paths need --image-root)"
                raise DataError(source, f"image file {path} not found{hint}", record=pair.id, field=name)

