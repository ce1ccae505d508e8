"""One optimizer step of every registered method on the tiny model: finite loss, trainable weights changed.

The ``one_step`` fixture (conftest.py) trains through the shared core with LoRA on one text pair and one
visual pair, and checks the loss is finite and the LoRA weights moved.
"""

from __future__ import annotations

import math

import pytest

from harness.methods import METHODS

# Under LoRA the policy equals the reference before the first step, so every log-ratio is 0 and the
# reference-based losses take known values; the pair weights 0.8 and 1.2 average to 1.
LOG2 = math.log(2)
FIRST_LOSS = {
    "dpo": LOG2, "povid": LOG2, "copo": LOG2, "cdpo": LOG2,
    "robust": LOG2,  # ((1 - e) log 2 - e log 2) / (1 - 2e) = log 2
    "ipo": 25.0,  # (0 - 1 / (2 * 0.1))^2
    "hinge": 1.0,  # max(0, 1 - 0)
    "mdpo": 3 * LOG2,  # DPO + CoPO + sigmoid anchor, each log 2
}

@pytest.mark.parametrize("name", [n for n in METHODS.names() if n != "mmedpo"])
def test_one_training_step(name, one_step, tmp_path):
    """mmedpo has its own training tests (tests/mmedpo); every other registered method is checked here."""
    result = one_step(METHODS.get(name)(), tmp_path / name)
    if name in FIRST_LOSS:
        assert result.history[0]["loss"] == pytest.approx(FIRST_LOSS[name], rel=1e-5)
