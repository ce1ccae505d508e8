"""Per-item names and seeds shared by the curation driver (``mmedpo.curate``) and its stages (``mmedpo.stages``).

An item is one (sample, kind) of the curation; its seed and its file names derive from the sample id only, so
an item gives the same hallucination, the same noise and the same image paths whichever batch it lands in
and whether or not the curation was resumed.
"""

from __future__ import annotations

import hashlib
import re


def item_seed(seed: int, sample_id: str) -> int:
    """The seed of one sample's hallucination and noise: a hash of the run seed and the sample id."""
    return int(hashlib.sha256(f"{seed}:{sample_id}".encode()).hexdigest()[:8], 16)


def safe_name(name: str) -> str:
    """``name`` as a file name: runs of other characters than letters, digits, ``.``, ``_``, ``-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120]
