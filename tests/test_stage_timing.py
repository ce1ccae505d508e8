"""Stage timings: exclusive times that add up to the clock's wall time, in every active clock."""

from __future__ import annotations

import pytest

from harness.core import timing


class _FakeTime:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_nested_stages_count_once_and_the_rest_is_other(monkeypatch):
    fake = _FakeTime()
    monkeypatch.setattr(timing, "_now", fake)
    with timing.clock() as study:
        fake.sleep(1.0)  # the study's own work
        with timing.clock() as run:
            with timing.stage("training"):
                fake.sleep(3.0)
                with timing.stage("reference"):
                    fake.sleep(2.0)
            fake.sleep(0.5)
    assert run.split() == {"pairs": 0.0, "reference": 2.0, "training": 3.0, "evaluation": 0.0,
                           "base_evaluation": 0.0, "other": 0.5}
    assert run.elapsed() == 5.5
    assert study.split()["training"] == 3.0 and study.split()["reference"] == 2.0
    assert study.split()["other"] == 1.5 and study.elapsed() == 6.5


def test_stages_outside_a_clock_cost_nothing_and_unknown_names_fail():
    with timing.stage("training"):
        pass
    with pytest.raises(ValueError, match="unknown stage 'trainig'"):
        with timing.stage("trainig"):
            pass


def test_add_sums_sessions_and_the_table_shows_shares():
    one = {"wall_s": 10.0, "stages_s": {"training": 6.0, "other": 4.0}}
    two = {"wall_s": 5.0, "stages_s": {"training": 1.0, "evaluation": 4.0}}
    total = timing.add(timing.add(None, one), two)
    assert total["wall_s"] == 15.0
    assert total["stages_s"]["training"] == 7.0 and total["stages_s"]["evaluation"] == 4.0
    row = timing.split_table([("dpo seed 0", total)])[0]
    assert row["training"] == "7.0 (47%)" and row["wall s"] == "15.0"
