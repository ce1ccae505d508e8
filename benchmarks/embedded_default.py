"""Wall time of the embedded default from scratch: `make demo`'s run and a 4-method x 3-seed study.

Each command runs in a fresh, empty HARNESS_HOME (so the testbed is built, the synthetic splits generated and
the base evaluated inside the timed span), one after the other, and the script prints one JSON line per
command with its wall time. It is a script rather than a pytest-benchmark test: one sample takes minutes
and the targets are minutes (docs/benchmarks.md, "The embedded default").

    python benchmarks/embedded_default.py            # demo, then the study (about 20 + 5 minutes on 2 cores)
    python benchmarks/embedded_default.py --demo-only
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
STUDY = ["study", "--methods", "base,dpo,mmedpo,povid", "--seeds", "3", "--format", "json"]


def timed(args: list[str]) -> dict:
    harness = Path(sys.executable).with_name("harness")
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as home:
        env = {**os.environ, "HARNESS_HOME": home, "TQDM_DISABLE": "1"}
        start = time.perf_counter()
        done = subprocess.run([str(harness), *args], env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"harness {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return {"command": "harness " + " ".join(args), "seconds": round(seconds, 1), "cpus": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-only", action="store_true", help="time only `harness run --method mmedpo`")
    args = parser.parse_args()
    for command in [DEMO] if args.demo_only else [DEMO, STUDY]:
        print(json.dumps(timed(command)), flush=True)


if __name__ == "__main__":
    main()
