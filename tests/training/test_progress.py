"""The training progress bar redraws only when tqdm's ``mininterval`` lets it (30 s in a log, ``harness.cli``):
setting the loss on the bar never forces a redraw. The clock is frozen, so no redraw is ever due after the
first: every redraw counted past it is a forced one."""

from __future__ import annotations

import pytest
from helpers import LocalDPO, make_pairs
from tqdm import std

from harness.models.hf import load_hf_model
from harness.training import TrainConfig, train_preference


class FrozenClockBar(std.tqdm):
    """A bar whose clock never moves: ``update`` never finds a redraw due, so only forced ones happen."""

    bars: list[FrozenClockBar] = []

    def __init__(self, *args, **kwargs):
        self.redraws = 0
        super().__init__(*args, **kwargs)  # draws once
        self._time = lambda: 1000.0  # tqdm's clock is an instance attribute, set by __init__
        self.start_t = self.last_print_t = 1000.0
        FrozenClockBar.bars.append(self)

    def refresh(self, *args, **kwargs):
        self.redraws += 1
        return super().refresh(*args, **kwargs)


@pytest.fixture
def frozen_bars(monkeypatch):
    import tqdm.auto

    FrozenClockBar.bars = []
    monkeypatch.setattr(tqdm.auto, "tqdm", FrozenClockBar)
    return FrozenClockBar.bars


def test_setting_the_loss_on_the_bar_does_not_force_a_redraw(tiny_model, image_dir, tmp_path, frozen_bars):
    config = TrainConfig(max_steps=6, batch_size=1, lora_r=2, warmup_ratio=0.0, merge_lora=False)
    result = train_preference(load_hf_model(tiny_model, device="cpu", dtype="fp32"), LocalDPO(), make_pairs(2),
                              image_dir, tmp_path / "run", config)
    assert len(result.history) == 6
    (bar,) = [b for b in frozen_bars if str(b.desc).startswith("train")]
    assert bar.redraws <= 1, f"{bar.redraws} redraws in 6 steps with no time passing"
    assert "loss=" in bar.postfix and bar.n == 6  # the postfix is still set, shown at the next due redraw
