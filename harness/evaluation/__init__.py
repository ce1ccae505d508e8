"""Batched evaluation: generation, scoring, storing. See ``harness.evaluation.engine`` and docs/evaluation.md."""

from harness.evaluation.config import ABLATIONS, EvalConfig
from harness.evaluation.engine import EvalResult, TaskResult, evaluate, score

__all__ = ["ABLATIONS", "EvalConfig", "EvalResult", "TaskResult", "evaluate", "score"]
