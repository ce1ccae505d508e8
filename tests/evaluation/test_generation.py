"""The generation path on a real LLaVA-architecture model: batching must not change greedy answers."""

from __future__ import annotations

from harness.evaluation import EvalConfig, evaluate

SHORT = {"max_new_tokens_closed": 4, "max_new_tokens_open": 6, "max_new_tokens_report": 10}


def test_batched_predictions_equal_one_at_a_time(tiny_hf_model, tmp_path):
    """Left padding with the attention mask (and positions from it) keeps every answer identical."""
    one = evaluate(tiny_hf_model, ["toy_eval"], output_dir=tmp_path / "one", store=False, progress=False,
                   config=EvalConfig(batch_size=1, limit=9, **SHORT))
    batched = evaluate(tiny_hf_model, ["toy_eval"], output_dir=tmp_path / "b", store=False, progress=False,
                       config=EvalConfig(batch_size=8, limit=9, **SHORT))
    answers = [r["prediction"] for r in batched.tasks["toy_eval"].predictions]
    assert answers == [r["prediction"] for r in one.tasks["toy_eval"].predictions]
    assert len(answers) == 9 and all(isinstance(a, str) for a in answers)


def test_ablated_pass_feeds_different_pixels(tiny_hf_model, tmp_path):
    result = evaluate(tiny_hf_model, ["toy_eval"], output_dir=tmp_path / "a", store=False, progress=False,
                      config=EvalConfig(batch_size=4, limit=6, image_ablation="blank", **SHORT))
    task = result.tasks["toy_eval"]
    assert len(task.ablated_predictions) == len(task.predictions) == 6
    assert set(task.ablated_metrics) == set(task.metrics)
