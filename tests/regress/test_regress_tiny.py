"""The issue's acceptance on the REAL trained tiny model (the first 200 synth_vqa test items: 114 closed + 86 open).

Every run goes through ``harness.evaluation.evaluate`` into a temporary results store, and is compared by
run id through ``harness regress`` (the CLI) or ``compare_sources`` (the library function behind it).

- worse on purpose: the untrained tiny model, and the trained one with Gaussian noise of relative std
  ``NOISE_STD`` added to every language-model weight tensor (fixed seed), against the trained model;
- null: the trained model against itself, both sides sampled at temperature 1 under different seeds,
  20 times; the false alarms of the test of any change at alpha 0.05 (Holm across the compared metrics)
  are counted.
"""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.evaluation import evaluate
from harness.evaluation.config import EvalConfig
from harness.regress import REGRESSED, RegressConfig, compare_sources

TASK = "synth_vqa"
ALPHA = 0.05
N_TRIALS = 20
# Binomial(20, 0.05): P(X >= 4) ~ 1.6%, so more than 3 alarms means the gate is miscalibrated, not unlucky
MAX_FALSE_ALARMS = 3
NOISE_STD = 0.5  # relative to each tensor's std; 0.3 hurt too little to be flagged for most noise seeds
TEMPERATURE = 1.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory, tiny_model_dir):
    """A results store, the trained model, and ``run(model, run_id, **EvalConfig options)``."""
    import torch

    from harness.models.hf import load_hf_model

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("regress_tiny")
    store = root / "results.sqlite"

    def run(model, run_id, **options):
        result = evaluate(model, [TASK], store=store, run_id=run_id, output_dir=root / "runs" / run_id,
                          config=EvalConfig(**{"n_boot": 100, "limit": 200, **options}), progress=False)
        return result.tasks[TASK]

    trained = load_hf_model(tiny_model_dir, device="cpu", dtype="fp32")
    baseline = run(trained, "trained")
    return {"root": root, "store": store, "run": run, "trained": trained, "baseline": baseline,
            "dir": tiny_model_dir}


def _regress_cli(lab, candidate, capsys) -> tuple[int, list[dict]]:
    code = main(["regress", "--baseline", "trained", "--candidate", candidate, "--store", str(lab["store"]),
                 "--alpha", str(ALPHA), "--n-boot", "2000", "--format", "json"])
    return code, json.loads(capsys.readouterr().out)["rows"]


def _assert_flagged(code: int, rows: list[dict]) -> None:
    assert code == 1
    by_metric = {r["metric"]: r for r in rows}
    # the default gate of a VQA task: closed accuracy and open recall, and the closed accuracy regressed
    assert set(by_metric) == {"closed_accuracy", "open_recall"}
    assert by_metric["closed_accuracy"]["verdict"] == REGRESSED


def test_the_untrained_tiny_model_is_flagged(lab, tmp_path, capsys):
    from harness.models.hf import load_hf_model
    from harness.models.tiny import build_tiny_model

    untrained = load_hf_model(build_tiny_model(tmp_path / "untrained"), device="cpu", dtype="fp32")
    result = lab["run"](untrained, "untrained")
    code, rows = _regress_cli(lab, "untrained", capsys)
    print(f"untrained: closed {result.metrics['closed_accuracy'].value:.3f} vs trained "
          f"{lab['baseline'].metrics['closed_accuracy'].value:.3f}")
    _assert_flagged(code, rows)
    assert all(r["verdict"] == REGRESSED for r in rows)  # every gated metric, closed and open


def test_the_trained_model_with_noised_weights_is_flagged(lab, capsys):
    import torch

    from harness.models.hf import load_hf_model

    noised = load_hf_model(lab["dir"], device="cpu", dtype="fp32")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in noised.model.model.language_model.parameters():
            if param.numel() > 1:
                param.add_(torch.randn(param.shape, generator=generator) * NOISE_STD * param.std())
    result = lab["run"](noised, "noised")
    base = lab["baseline"].metrics
    code, rows = _regress_cli(lab, "noised", capsys)
    print(f"noised (relative std {NOISE_STD}): closed {result.metrics['closed_accuracy'].value:.3f} vs "
          f"{base['closed_accuracy'].value:.3f}, open recall {result.metrics['open_recall'].value:.3f} vs "
          f"{base['open_recall'].value:.3f}")
    _assert_flagged(code, rows)


def test_the_same_model_under_20_seeds_raises_no_more_false_alarms_than_alpha_allows(lab):
    """Null: two independent sampled evaluations of the trained model per trial, differing only in the seed."""
    alarms, p_values, changed = 0, [], []
    for trial in range(N_TRIALS):
        ids, answers = [], []
        for side, seed in (("a", 1000 + 2 * trial), ("b", 1001 + 2 * trial)):
            ids.append(f"null{trial}{side}")
            result = lab["run"](lab["trained"], ids[-1], do_sample=True, temperature=TEMPERATURE, seed=seed)
            answers.append([r["prediction"] for r in result.predictions])
        changed.append(sum(x != y for x, y in zip(*answers)) / len(answers[0]))
        comparison = compare_sources(ids[0], ids[1], RegressConfig(alpha=ALPHA, n_boot=2000), store=lab["store"])
        alarms += any(r.p_adjusted < ALPHA for r in comparison.gated)
        p_values.append(min(r.p_adjusted for r in comparison.rows))
    print(f"null on the trained tiny model: {alarms} false alarm(s) of {N_TRIALS} at alpha {ALPHA} (Holm over "
          f"{len(comparison.rows)} metrics); answers changed between seeds: "
          f"{min(changed):.0%}-{max(changed):.0%}; smallest adjusted p per trial "
          f"{[round(p, 3) for p in p_values]}")
    # the two sides really are different draws (else the null could not fail)
    assert min(changed) > 0.05
    assert alarms <= MAX_FALSE_ALARMS
    assert min(p_values) < 0.9


def test_sampling_is_reproducible_per_seed(lab):
    """The same seed gives the same sampled answers (so a resumed or rerun null trial is identical)."""
    first = lab["run"](lab["trained"], "repro1", do_sample=True, temperature=TEMPERATURE, seed=7, limit=60)
    again = lab["run"](lab["trained"], "repro2", do_sample=True, temperature=TEMPERATURE, seed=7, limit=60)
    assert [r["prediction"] for r in first.predictions] == [r["prediction"] for r in again.predictions]
