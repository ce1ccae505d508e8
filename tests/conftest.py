"""Shared fixtures.

``shared_data`` is the real data folder beside the project (``../shared/data``; ``HARNESS_SHARED_DATA``
overrides it); tests that need it skip with the reason when it is absent. Every test session writes under
its own temporary ``HARNESS_HOME`` so nothing touches the user's cache. ``ramp_pngs`` and ``oversized_png``
are the image files of the image-reader tests (``harness.core.images``): a 16-bit ramp beside its 8-bit
conversion, and a 20000 x 20000 PNG above the pixel limit (``blank_png`` writes others).
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    return Path(os.environ.get("HARNESS_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _shared_data()
    if not path.is_dir():
        pytest.skip(f"real data folder not found at {path} (set HARNESS_SHARED_DATA)")
    return path


def _share_tiny_between_workers(tmp_path_factory, home: Path) -> None:
    """Under pytest-xdist (``make test`` runs two workers), build the ``tiny`` model once for all workers.

    Each worker keeps its own ``HARNESS_HOME``; the first worker to get here builds the model in a home shared
    by the run (under a file lock) and every worker copies the finished folder into its own home, where
    ``ensure_tiny`` finds it complete (its stamp records the weights' fingerprint, not the folder)."""
    import shutil

    from filelock import FileLock

    from harness.experiments.builtin_models import ensure_tiny

    shared = tmp_path_factory.getbasetemp().parent / "shared_harness_home"
    with FileLock(str(shared) + ".lock"):
        os.environ["HARNESS_HOME"] = str(shared)
        built = ensure_tiny()
    os.environ["HARNESS_HOME"] = str(home)
    shutil.copytree(built, home / built.relative_to(shared))


@pytest.fixture(scope="session", autouse=True)
def isolated_harness_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("harness_home")
    old = os.environ.get("HARNESS_HOME")
    os.environ["HARNESS_HOME"] = str(home)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _share_tiny_between_workers(tmp_path_factory, home)
    yield home
    if old is None:
        os.environ.pop("HARNESS_HOME", None)
    else:
        os.environ["HARNESS_HOME"] = old


@pytest.fixture(scope="session")
def tiny_model_dir(isolated_harness_home) -> Path:
    """The trained built-in ``tiny`` model (built and trained on the synthetic suite once per session)."""
    from harness.experiments.builtin_models import ensure_tiny

    return ensure_tiny()


def write_blank_png(path: Path, width: int, height: int) -> Path:
    """A valid all-black 1-bit PNG of any size, written row by row: PIL never holds its pixels, and a
    20000 x 20000 file is about 50 kB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the packed bits
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="session")
def blank_png():
    """``blank_png(path, width, height)``: a cheap PNG of any size (``write_blank_png``)."""
    return write_blank_png


@pytest.fixture(scope="session")
def oversized_png(tmp_path_factory) -> Path:
    """A 20000 x 20000 PNG (400M pixels: more than twice PIL's default limit, so PIL itself raises)."""
    return write_blank_png(tmp_path_factory.mktemp("oversized") / "huge.png", 20000, 20000)


@pytest.fixture(scope="session")
def ramp_pngs(tmp_path_factory) -> tuple[Path, Path]:
    """(16-bit grayscale PNG, its 8-bit conversion): a 64 x 256 ramp through every 8-bit level, stored in
    16 bits as ``v * 257`` (the full 16-bit range), which the harness reads back as exactly ``v``."""
    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("ramp")
    levels = np.tile(np.arange(256, dtype=np.uint16), (64, 1))
    Image.fromarray(levels * 257).save(folder / "ramp16.png")
    Image.fromarray(levels.astype(np.uint8)).save(folder / "ramp8.png")
    return folder / "ramp16.png", folder / "ramp8.png"


# Under pytest-xdist (``make test``: two workers, whole files per worker), files start in collection order.
# These take minutes each (building the default testbed, the learning-rate sweep study, multi-process
# training); started first, they run beside everything else instead of alone at the end.
HEAVY_FIRST = ("tests/experiments/test_testbed.py", "tests/test_study.py", "tests/training/test_sharded.py")


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        path = Path(str(item.fspath)).relative_to(REPO).as_posix() if REPO in Path(str(item.fspath)).parents else ""
        return HEAVY_FIRST.index(path) if path in HEAVY_FIRST else len(HEAVY_FIRST)

    items.sort(key=rank)  # stable: the order inside each group is pytest's
