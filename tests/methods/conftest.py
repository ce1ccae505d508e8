"""Fixtures for the method tests: ``LogProbs`` built from summed log-probs and token counts."""

from __future__ import annotations

import pytest
import torch

from harness.methods.base import LogProbs


def _logprobs(chosen, rejected, chosen_tokens, rejected_tokens, extra=None, requires_grad=False) -> LogProbs:
    def t(values):
        return torch.tensor(values, dtype=torch.float64, requires_grad=requires_grad)

    c, r = t(chosen), t(rejected)
    ct = torch.tensor(chosen_tokens, dtype=torch.float64)
    rt = torch.tensor(rejected_tokens, dtype=torch.float64)
    return LogProbs(c, r, c / ct, r / rt, ct, rt, extra={k: t(v) for k, v in (extra or {}).items()})


@pytest.fixture
def make_logprobs():
    """``make_logprobs(chosen, rejected, chosen_tokens, rejected_tokens, extra=None)``; means are sum / tokens."""
    return _logprobs


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The untrained tiny LLaVA (a root-level fixture of the same name may replace this one)."""
    tiny = pytest.importorskip("harness.models.tiny", reason="harness.models.tiny is not available")
    return tiny.build_tiny_model(tmp_path_factory.mktemp("methods_tiny"))
