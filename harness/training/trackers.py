"""Experiment trackers (``--report-to``): which exist, what they need, and what they are sent.

A tracker is accelerate's (``accelerate.tracking``); the harness adds three things to it:

* the tracker's package is checked when the options are read (``check_tracker``), so ``--report-to wandb``
  without wandb fails at once with one line instead of training with nothing tracked;
* training scalars carry TRL's names (``train/loss``, ``train/rewards/accuracies``, ``train/rewards/margins``,
  ``train/learning_rate``, ``train/grad_norm``, ``train/epoch``...; the loop's ``_accumulate``), so a dashboard
  built for TRL's preference trainers reads a harness run unchanged;
* the evaluation that ends ``harness run`` is logged to the same tracker run as ``eval/<task>/<metric>``
  with ``.../ci_low`` and ``.../ci_high`` (``log_evaluation``), at the last training step.

The tracker run's identity is kept in ``<train dir>/tracker.json`` so that a resumed training and the
evaluation after it write to the run the training opened (wandb and mlflow run ids; TensorBoard's is
its folder). This module imports no tracker package until one is used.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tracker:
    name: str
    module: str  # the import that must resolve
    extra: str  # the medpo-harness extra that installs it


TRACKERS = {
    "tensorboard": Tracker("tensorboard", "tensorboard", "tracking"),
    "wandb": Tracker("wandb", "wandb", "wandb"),
    "mlflow": Tracker("mlflow", "mlflow", "mlflow"),
}
REPORTERS = ("none", *TRACKERS)
STATE_FILE = "tracker.json"


def check_tracker(name: str) -> None:
    """Refuse an unknown tracker, or one whose package is not installed, with a one-line ``HarnessError``."""
    if name == "none":
        return
    tracker = TRACKERS.get(name)
    if tracker is None:
        raise HarnessError(f"invalid training option: report_to must be one of {', '.join(REPORTERS)}, got {name!r}")
    from harness.core.extras import require

    require(tracker.module, tracker.extra, f"--report-to {name}")


def init_kwargs(report_to: str, output_dir: Path) -> dict[str, Any]:
    """accelerate ``init_kwargs`` that reopen the tracker run a previous launch on ``output_dir`` opened."""
    state = _read_state(output_dir)
    if state is None or state.get("report_to") != report_to or not state.get("id"):
        return {}
    if report_to == "wandb":
        return {"wandb": {"id": state["id"], "resume": "allow"}}
    if report_to == "mlflow":
        return {"mlflow": {"run_id": state["id"]}}
    return {}


def remember(accelerator: Any, report_to: str, run_name: str, output_dir: Path) -> None:
    """Write ``tracker.json``: the tracker, the run name and (wandb, mlflow) the tracker's run id."""
    from harness.core.io import write_json

    run_id = None
    if report_to in ("wandb", "mlflow"):
        handle = accelerator.get_tracker(report_to, unwrap=True)
        run_id = getattr(getattr(handle, "info", None), "run_id", None) or getattr(handle, "id", None)
    write_json(output_dir / STATE_FILE, {"report_to": report_to, "run_name": run_name, "id": run_id})


def eval_scalars(rows: Any) -> dict[str, float]:
    """Tracker scalars from evaluation result rows (``EvalResult.result_rows()`` or store rows): the value
    as ``eval/<task>/<metric>`` and its interval as ``.../ci_low`` and ``.../ci_high``."""
    scalars: dict[str, float] = {}
    for row in rows:
        get = row.get if isinstance(row, dict) else lambda key, r=row: getattr(r, key, None)
        base = f"eval/{get('task')}/{get('metric')}"
        for suffix, key in (("", "value"), ("/ci_low", "ci_low"), ("/ci_high", "ci_high")):
            value = get(key)
            if value is not None and math.isfinite(float(value)):
                scalars[base + suffix] = float(value)
    return scalars


def log_evaluation(train_dir: str | Path, rows: Any) -> bool:
    """Log evaluation results to the tracker run the training in ``train_dir`` opened, at its last step.

    Returns False (and logs nothing) when that training reported to no tracker.
    """
    train_dir = Path(train_dir)
    state = _read_state(train_dir)
    if state is None or state.get("report_to") in (None, "none"):
        return False
    report_to, run_name, run_id = state["report_to"], state.get("run_name") or "harness-train", state.get("id")
    check_tracker(report_to)
    scalars = eval_scalars(rows)
    if not scalars:
        return False
    step = _last_step(train_dir)
    from accelerate import tracking

    if report_to == "tensorboard":
        tracker = tracking.TensorBoardTracker(run_name, train_dir)
    elif report_to == "wandb":
        tracker = tracking.WandBTracker(run_name, **({"id": run_id, "resume": "allow"} if run_id else {}))
    else:
        tracker = tracking.MLflowTracker(run_name, str(train_dir), run_id=run_id)
    tracker.start()
    try:
        tracker.log(scalars, step=step)
    finally:
        tracker.finish()
    log.info("logged %d evaluation scalars to %s (run %s, step %s)", len(scalars), report_to, run_name, step)
    return True


def _read_state(output_dir: Path) -> dict[str, Any] | None:
    from harness.core.io import read_json

    path = Path(output_dir) / STATE_FILE
    return read_json(path) if path.is_file() else None


def _last_step(train_dir: Path) -> int | None:
    from harness.core.io import read_json

    path = train_dir / "train_config.json"
    return int(read_json(path)["total_steps"]) if path.is_file() else None
