"""A/A calibration of `harness study`'s test on the built-in tiny model: one method against itself.

Usage:
    python scripts/aa_calibration.py                          # 80 runs, 20 independent A/A pairs of 2 v 2 seeds
    python scripts/aa_calibration.py --runs 8 --pairs 21      # a pool of 8 runs, 21 (dependent) pairs

Trains ``--runs`` DPO runs of the tiny model through `harness study` (training seeds 0..N-1, each with its own
pair draw, a short and deliberately noisy training so that seeds matter), then splits them into pairs of
disjoint seed groups, A against A, and tests every headline metric of synth_vqa with the study's test
(harness.stats.seeds). Prints one JSON object: the false positives at alpha 0.05, the Kolmogorov-Smirnov
p-value of "the p-values are uniform", the same for the item-level test alone, and every comparison.
Set HARNESS_HOME to keep the runs apart from your own. See docs/study.md ("Calibration").
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    from harness.cli.common import stdout_for_data
    from harness.experiments.pipeline import RunConfig
    from harness.experiments.study import StudyConfig, load_study, parse_methods, run_study
    from harness.experiments.study.analysis import aa_calibration

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=80, help="training runs (seeds 0..N-1)")
    parser.add_argument("--pairs", type=int, default=20, help="A/A pairs")
    parser.add_argument("--per-arm", type=int, default=2, help="seeds per arm")
    parser.add_argument("--dependent", action="store_true",
                        help="draw the pairs from the pool (runs shared between pairs) instead of disjoint blocks")
    parser.add_argument("--eval-limit", type=int, default=100)
    parser.add_argument("--train-limit", type=int, default=16)
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--study-id", default=None, help="reuse (or resume) this study")
    parser.add_argument("--n-boot", type=int, default=2000)
    args = parser.parse_args(argv)
    study_id = args.study_id or f"aa-tiny-{args.runs}"
    run = RunConfig(model="tiny", tasks=("synth_vqa",), train_limit=args.train_limit, eval_limit=args.eval_limit,
                    text_pairs="injector", train={"batch_size": 4, "max_steps": args.max_steps, "lr": args.lr})
    # one method against itself at one rate and one step budget: no learning-rate sweep
    config = StudyConfig(methods=parse_methods("dpo"), seeds=list(range(args.runs)), run=run, steps=args.max_steps,
                         lr_rule="fixed")
    with stdout_for_data():  # training's library banners go to stderr: stdout is the JSON only
        run_study(config, study_id=study_id)
        study = load_study(study_id)
        result = aa_calibration(study, study.state.get("store"), "dpo", per_arm=args.per_arm, pairs=args.pairs,
                                independent=not args.dependent, n_boot=args.n_boot)
    result["command"] = "python scripts/aa_calibration.py " + " ".join(argv if argv is not None else sys.argv[1:])
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
