"""The harness's one image reader: every image it reads for a model, from a file or a dataset, passes through
here (lesion masks, read as masks, do not).

(Noise on images lives in :mod:`harness.curation.imaging`; this module only reads and converts.)

``open_image`` takes a path, bytes, ``datasets``' undecoded ``{"path", "bytes"}`` or a PIL image and
returns the RGB image the models take; ``to_rgb`` / ``to_8bit`` convert an image already in memory.
Bad input is a one-line ``DataError`` naming the file, the item and the field, never a traceback.

**Bit depth.** PIL's ``convert("RGB")`` clips high-bit-depth grayscale at 255, which turns a 16-bit
radiograph almost entirely white. Here such images are scaled to 8 bits, never clipped:

- ``I;16`` (and ``I;16L``/``I;16B``/``I;16N``: 16-bit PNG and TIFF): the full 16-bit range maps linearly
  onto 0..255, ``round(v / 257)``; a 16-bit image written as ``v8 * 257`` reads back as exactly its
  8-bit original. A file holding 12-bit values in a 16-bit container therefore reads dark (PNG's ``sBIT``
  is not read by PIL); convert such files to 8 bits beforehand if that matters.
- ``I`` (32-bit integer) and ``F`` (32-bit float) declare no range, so each image's own minimum and
  maximum (over finite values) map linearly onto 0..255; a constant image becomes black.
- Every other mode (``1``, ``L``, ``P``, ``RGB``, ``RGBA``...) converts exactly as ``convert("RGB")`` does.

**Size.** An image of more than ``MAX_PIXELS`` pixels (89,478,485, PIL's default
``Image.MAX_IMAGE_PIXELS``: about 9459 x 9459) is refused with one line naming the file and the limit.
PIL itself only warns between 1x and 2x its limit and raises above 2x; here both are refusals, checked on
the file's header before any pixel is decoded. A lower ``Image.MAX_IMAGE_PIXELS`` set by the caller
lowers the limit; a higher one (or ``None``) does not raise it.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from harness.core.errors import DataError, HarnessError

MAX_PIXELS = 89_478_485  # PIL's default Image.MAX_IMAGE_PIXELS, fixed so a library lifting PIL's limit cannot lift ours
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
RANGE_MODES = ("I", "F")


class ImageTooLarge(HarnessError):
    """An image above the pixel limit; the caller adds the file and the item (``DataError``)."""

    def __init__(self, pixels: int | None, size: tuple[int, int] | None = None):
        self.pixels, self.limit = pixels, pixel_limit()
        shape = f"{size[0]}x{size[1]} = " if size else ""
        count = f"{shape}{pixels:,} pixels" if pixels is not None else "too many pixels"
        self.detail = (f"is {count}, above the limit of {self.limit:,} pixels (harness.core.images.MAX_PIXELS); "
                       "downscale it first")
        super().__init__(f"image {self.detail}")


def pixel_limit() -> int:
    """``MAX_PIXELS``, or PIL's ``Image.MAX_IMAGE_PIXELS`` where the caller set that lower."""
    pil = Image.MAX_IMAGE_PIXELS
    return min(MAX_PIXELS, int(pil)) if pil else MAX_PIXELS


def check_size(image: Image.Image) -> Image.Image:
    """``image`` unchanged, or ``ImageTooLarge`` when it has more than ``pixel_limit()`` pixels."""
    width, height = image.size
    if width * height > pixel_limit():
        raise ImageTooLarge(width * height, image.size)
    return image


@contextmanager
def size_limit() -> Iterator[None]:
    """Inside: PIL's decompression-bomb warning (1x-2x its limit) and error (above 2x) become ``ImageTooLarge``.

    Wraps a decode done by other code (``datasets``' ``Image`` feature); ``check_size`` the result as well,
    since PIL's own limit may have been lifted.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            found = re.search(r"\((\d+) pixels\)", str(exc))
            raise ImageTooLarge(int(found.group(1)) if found else None) from None


def decoded(load: Callable[[], Image.Image]) -> Image.Image:
    """``load()`` (a call that opens and decodes one image) under ``size_limit``, size-checked, in 8 bits."""
    with size_limit():
        image = load()
    return to_8bit(check_size(image))


def to_8bit(image: Image.Image) -> Image.Image:
    """``image`` with high-bit-depth grayscale (``I;16*``, ``I``, ``F``) scaled to ``L`` by the module's
    rule; any other mode is returned as is."""
    if image.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.rint(values / 257.0).astype(np.uint8), mode="L")
    if image.mode in RANGE_MODES:
        values = np.asarray(image, dtype=np.float64)
        finite = np.isfinite(values)
        low, high = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 0.0)
        if high <= low:
            return Image.new("L", image.size, 0)
        scaled = np.where(finite, (values - low) * (255.0 / (high - low)), 0.0)
        return Image.fromarray(np.rint(np.clip(scaled, 0, 255)).astype(np.uint8), mode="L")
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as an RGB image: ``to_8bit`` first (scaled, never clipped), then ``convert("RGB")``."""
    return to_8bit(image).convert("RGB")


def open_image(source: Any, *, record: object = None, field: str | None = "image",
               where: str | Path | None = None) -> Image.Image:
    """The RGB image in ``source``: a path, bytes, a ``{"path", "bytes"}`` dict, or a PIL image.

    A missing, undecodable or oversized file is a ``DataError`` on ``where`` (default: the image file
    itself; pass the annotation file to name that instead, and the message then names the image), the
    ``record`` and the ``field``.
    """
    return to_rgb(read_image(source, record=record, field=field, where=where))


def read_image(source: Any, *, record: object = None, field: str | None = "image",
               where: str | Path | None = None) -> Image.Image:
    """Like ``open_image`` but keeps the image's mode after ``to_8bit`` (``L`` stays one channel), fully
    decoded and with the file closed; for callers that need a mask or a grayscale image."""
    if isinstance(source, Image.Image):
        try:
            return to_8bit(check_size(source))
        except ImageTooLarge as exc:
            raise DataError(where or "image", str(exc), record=record, field=field) from None
    if isinstance(source, dict):
        source = source.get("bytes") or source.get("path")
    if isinstance(source, (bytes, bytearray)):
        name, handle = None, io.BytesIO(source)
    elif isinstance(source, (str, Path)):
        name, handle = Path(source), Path(source)
    else:
        raise DataError(where or "image", f"no usable image (got {type(source).__name__})", record=record,
                        field=field)
    label = where if where is not None else (name or "image bytes")
    named = f"image file {name} " if name is not None and where is not None else "image "

    def load() -> Image.Image:
        with Image.open(handle) as image:
            check_size(image)  # on the header, before any pixel is decoded
            image.load()
            return image

    try:
        return decoded(load)
    except ImageTooLarge as exc:
        raise DataError(label, named + exc.detail, record=record, field=field) from None
    except FileNotFoundError:
        raise DataError(label, f"{named}not found", record=record, field=field) from None
    except (OSError, ValueError, SyntaxError) as exc:  # PIL.UnidentifiedImageError is an OSError
        problem = " ".join(str(exc).split())[:120]
        raise DataError(label, f"{named}cannot be decoded ({problem})", record=record, field=field) from None

