"""``EvalConfig.do_sample`` / ``--do-sample --temperature``: seeded sampling instead of greedy decoding."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.core.errors import HarnessError
from harness.evaluation.config import EvalConfig
from harness.evaluation.engine import _generation_config

ROWS = [{"id": "a"}, {"id": "b"}]


def test_greedy_by_default_and_sampling_seeded_per_seed_and_batch():
    greedy = _generation_config(EvalConfig(), "closed", "t", ROWS)
    assert not greedy.do_sample and greedy.seed is None
    one = _generation_config(EvalConfig(do_sample=True, temperature=0.7, seed=1), "closed", "t", ROWS)
    assert one.do_sample and one.temperature == 0.7 and one.max_new_tokens == EvalConfig().max_new_tokens_closed
    assert one == _generation_config(EvalConfig(do_sample=True, temperature=0.7, seed=1), "closed", "t", ROWS)
    assert one.seed != _generation_config(EvalConfig(do_sample=True, temperature=0.7, seed=2), "closed", "t", ROWS).seed
    assert one.seed != _generation_config(EvalConfig(do_sample=True, temperature=0.7, seed=1), "closed", "t",
                                          [{"id": "c"}]).seed


@pytest.mark.parametrize("temperature", [0.0, -1.0])
def test_a_non_positive_temperature_is_refused(temperature):
    with pytest.raises(HarnessError, match="temperature must be > 0"):
        EvalConfig(do_sample=True, temperature=temperature)


def test_the_cli_flags_reach_the_run_config(tiny_hf_dir, tmp_path, capsys):
    rc = main(["eval", "--model", str(tiny_hf_dir), "--tasks", "toy_eval", "--limit", "3", "--no-store",
               "--output-dir", str(tmp_path / "run"), "--no-progress", "--do-sample", "--temperature", "0.7",
               "--seed", "3", "--max-new-tokens-closed", "4", "--max-new-tokens-open", "4",
               "--max-new-tokens-report", "4"])
    capsys.readouterr()
    assert rc == 0
    config = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    assert config["do_sample"] is True and config["temperature"] == 0.7 and config["seed"] == 3
