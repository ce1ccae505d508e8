"""Wall time of the embedded default from scratch: `make demo`'s run and a 4-method x 5-seed study.

Each command runs in a fresh, empty HARNESS_HOME (so the testbed is built, the synthetic splits generated and
the base evaluated inside the timed span), one after the other, and the script prints one JSON line per
command with its wall time. Shared CPU hosts change speed from hour to hour, so each line also carries
`host_seconds`: a fixed torch workload timed just before the command, the same in every run of the script,
to compare wall times measured at different times (docs/benchmarks.md). It is a script rather than a pytest-benchmark test: one sample takes minutes
and the targets are minutes (docs/benchmarks.md, "The embedded default").

    python benchmarks/embedded_default.py              # demo, then the study (about 4 + 17 minutes on 2 idle cores)
    python benchmarks/embedded_default.py --demo-only
    python benchmarks/embedded_default.py --study-only
    python benchmarks/embedded_default.py --study-only --keep DIR   # keep DIR/study (its timings.json)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEMO = ["run", "--method", "mmedpo"]
STUDY = ["study", "--methods", "base,dpo,mmedpo,povid", "--seeds", "5", "--format", "json"]


def host_seconds(rounds: int = 3) -> float:
    """Median seconds of a fixed CPU workload (matrix products and a small MLP's forward and backward)."""
    import torch

    torch.manual_seed(0)
    a, layer = torch.randn(384, 384), torch.nn.Sequential(torch.nn.Linear(384, 768), torch.nn.GELU(),
                                                          torch.nn.Linear(768, 384))
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(40):
            (a @ a).sum()
            layer(a).pow(2).mean().backward()
        times.append(time.perf_counter() - start)
    return round(sorted(times)[len(times) // 2], 3)


def timed(args: list[str], keep: Path | None = None) -> dict:
    harness = Path(sys.executable).with_name("harness")
    host = host_seconds()
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as scratch:
        home = str(keep / args[0]) if keep is not None else scratch
        env = {**os.environ, "HARNESS_HOME": home, "TQDM_DISABLE": "1"}
        start = time.perf_counter()
        done = subprocess.run([str(harness), *args], env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"harness {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return {"command": "harness " + " ".join(args), "seconds": round(seconds, 1), "cpus": os.cpu_count(),
            "host_seconds": host}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--demo-only", action="store_true", help="time only `harness run --method mmedpo`")
    only.add_argument("--study-only", action="store_true", help="time only the study")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="run in DIR/run and DIR/study (new folders) and keep them, e.g. for "
                             "benchmarks/study_split.py DIR/study:<study id>")
    args = parser.parse_args()
    if args.keep is not None:
        for name in ("run", "study"):
            if (args.keep / name).exists():
                parser.error(f"{args.keep / name} exists: --keep needs new folders (each command starts empty)")
    for command in [DEMO] if args.demo_only else [STUDY] if args.study_only else [DEMO, STUDY]:
        print(json.dumps(timed(command, args.keep)), flush=True)


if __name__ == "__main__":
    main()
