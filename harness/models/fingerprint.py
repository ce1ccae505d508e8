"""Content identity of a model: what every cache and every comparison of the harness is keyed by.

``model_fingerprint(folder)`` hashes the *content* of every file that decides what the model answers: the
weights (``*.safetensors``, ``*.bin``, ``*.pt``, ``*.pth``), the configurations (``*config*.json``, the
sharded-weights index) and the tokenizer and chat-template files. It never looks at the folder's path or
name, a model card, a build stamp or training arguments, so the same weights copied elsewhere have the same
fingerprint, and new weights under an old path get a new one.

Hashing a 7B model's 14 GB takes tens of seconds, so each file's SHA-256 is cached in
``$HARNESS_HOME/cache/file-digests.json`` by (absolute path, size, modification time in ns, inode): a file
rewritten in place or replaced by a rename changes at least one of them and is hashed again. The cache is
only a speed-up; deleting it is always safe.

``module_fingerprint(module)`` hashes a loaded module's parameters and buffers (names, dtypes, shapes and
bytes), for models that have no local folder.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Files that decide a model's outputs. Everything else in a folder (README.md, build stamps, training_args.bin,
# optimizer states) is left out: it changes between identical models, or never reaches a forward pass.
IDENTITY_PATTERNS = (
    "*.safetensors", "*.bin", "*.pt", "*.pth", "*.gguf",
    "*config*.json", "*.index.json",
    "tokenizer*", "*.model", "vocab*", "merges.txt", "special_tokens_map.json", "added_tokens.json",
    "chat_template*",
)
EXCLUDED = ("training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state*.pth", "trainer_state.json")
FINGERPRINT_LENGTH = 16
_CHUNK = 1 << 22
_lock = threading.Lock()


def identity_files(folder: str | Path) -> list[Path]:
    """The files of ``folder`` (top level, sorted by name) that the fingerprint covers."""
    folder = Path(folder)
    files = []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        name = path.name
        if not path.is_file() or name.startswith("."):
            continue
        if any(fnmatch.fnmatch(name, p) for p in EXCLUDED):
            continue
        if any(fnmatch.fnmatch(name, p) for p in IDENTITY_PATTERNS):
            files.append(path)
    return files


def model_fingerprint(folder: str | Path) -> str:
    """A 16-hex-digit digest of the content of ``folder``'s identity files (see the module docstring)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in identity_files(folder):
        digest.update(f"{path.name}\0{file_digest(path)}\n".encode())
    return digest.hexdigest()[:FINGERPRINT_LENGTH]


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, from the digest cache when the file's (size, mtime, inode) match."""
    path = Path(path).resolve()
    stat = path.stat()
    stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    cache_path = _cache_path()
    with _lock:
        cache = _read_cache(cache_path)
        entry = cache.get(str(path))
        if entry and entry.get("stamp") == stamp:
            return entry["sha256"]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    if stat.st_size >= 1 << 20:  # small files are cheaper to hash than to look up
        with _lock:
            cache = _read_cache(cache_path)
            cache[str(path)] = {"stamp": stamp, "sha256": value}
            _write_cache(cache_path, cache)
    return value


def module_fingerprint(module: Any) -> str:
    """A digest of a loaded torch module's parameters and buffers (for models without a local folder)."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted([*module.named_parameters(), *module.named_buffers()], key=lambda item: item[0]):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}\0{data.dtype}\0{tuple(data.shape)}\n".encode())
        digest.update(data.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:FINGERPRINT_LENGTH]


def _cache_path() -> Path:
    from harness.core.paths import harness_home

    return harness_home() / "cache" / "file-digests.json"


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # a missing or damaged cache is only a slower start


def _write_cache(path: Path, cache: dict[str, Any]) -> None:
    from harness.core.io import atomic_write

    # drop entries of files that are gone, so the cache does not grow with every deleted checkpoint
    live = {k: v for k, v in cache.items() if os.path.exists(k)}
    try:
        with atomic_write(path) as handle:
            json.dump(live, handle)
    except OSError as exc:  # a read-only home still fingerprints, just without the speed-up
        log.debug("digest cache not written (%s)", exc)
