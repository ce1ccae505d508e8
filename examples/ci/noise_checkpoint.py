"""Write a copy of a model folder whose language-model weights carry Gaussian noise: a known-worse candidate
to check that a factuality gate fails what it should (docs/regression.md, worked example).

Each tensor named ``language_model.*`` with more than one element gets noise of standard deviation
``std x`` the tensor's own standard deviation, from a seeded generator; everything else is copied as is.

    python examples/ci/noise_checkpoint.py "$(python -c 'from harness.experiments.builtin_models import ensure_tiny; print(ensure_tiny())')" \
        noised-0.3/ --std 0.3 --seed 0
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def noise_checkpoint(source: Path, target: Path, *, std: float, seed: int = 0, prefix: str = "language_model.") -> int:
    """Copy ``source`` to ``target`` with noised weights; returns how many tensors were noised."""
    import torch
    from safetensors.torch import load_file, save_file

    weights = sorted(source.glob("*.safetensors"))
    if not weights:
        raise SystemExit(f"error: no *.safetensors in {source}")
    shutil.copytree(source, target, dirs_exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    noised = 0
    for path in weights:
        tensors = load_file(path)
        for name in sorted(tensors):
            tensor = tensors[name]
            if name.startswith(prefix) and tensor.numel() > 1 and tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float32)
                tensors[name] = (tensor.float() + noise * std * tensor.float().std()).to(tensor.dtype)
                noised += 1
        save_file(tensors, target / path.name, metadata={"format": "pt"})
    return noised


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="model folder (config + *.safetensors)")
    parser.add_argument("target", type=Path, help="folder to write")
    parser.add_argument("--std", type=float, required=True, help="noise std relative to each tensor's std")
    parser.add_argument("--seed", type=int, default=0, help="noise seed")
    args = parser.parse_args()
    count = noise_checkpoint(args.source, args.target, std=args.std, seed=args.seed)
    print(f"wrote {args.target}: {count} tensors noised (relative std {args.std}, seed {args.seed})")


if __name__ == "__main__":
    main()
