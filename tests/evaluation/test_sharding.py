"""Sharding across processes, simulated with threads: each 'rank' evaluates its strided share, the main merges."""

from __future__ import annotations

import threading

import pytest

from harness.core.io import read_jsonl
from harness.evaluation import evaluate
from harness.evaluation.distributed import ProcessGroup
from harness.evaluation.predictions import merge, shard


def test_shards_partition_the_items():
    items = list(range(11))
    shares = [shard(items, rank, 3) for rank in range(3)]
    assert sorted(i for share in shares for i in share) == items
    assert shares[1] == [1, 4, 7, 10]
    with pytest.raises(ValueError):
        shard(items, 3, 3)


def _run_ranks(world_size, make_model, **kwargs):
    barrier = threading.Barrier(world_size, timeout=60)
    outcomes, errors = {}, []

    def run(rank):
        try:
            group = ProcessGroup(rank, world_size, barrier.wait)
            outcomes[rank] = evaluate(make_model(), ["toy_eval"], process=group, progress=False, **kwargs)
        except BaseException as exc:  # surfaced below; a dead rank would otherwise hang the barrier
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(world_size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return outcomes


def test_simulated_ranks_match_one_process(tmp_path, oracle_cls):
    single = evaluate(oracle_cls(), ["toy_eval"], batch_size=2, output_dir=tmp_path / "one", store=False,
                      progress=False)
    models = []

    def make_model():
        models.append(oracle_cls())
        return models[-1]

    outcomes = _run_ranks(3, make_model, batch_size=2, output_dir=tmp_path / "three", store=False, run_id="s")
    main, others = outcomes[0], [outcomes[1], outcomes[2]]
    assert main.is_main and not any(o.is_main for o in others) and all(o.tasks == {} for o in others)
    assert main.tasks["toy_eval"].predictions == single.tasks["toy_eval"].predictions
    assert main.tasks["toy_eval"].metrics == single.tasks["toy_eval"].metrics
    parts = sorted((tmp_path / "three" / "predictions").glob("toy_eval.part-*.jsonl"))
    assert [p.name for p in parts] == [f"toy_eval.part-{r}.jsonl" for r in range(3)]
    per_rank = [[r["id"] for r in read_jsonl(p)] for p in parts]
    assert sorted(sum(per_rank, [])) == [f"toy-{i:03d}" for i in range(14)]  # each item answered once
    assert all(m.answered for m in models)  # every rank did a share


def test_resume_with_a_different_world_size(tmp_path, oracle_cls, failing_cls):
    """Two ranks crash part-way; one process resumes and answers only what is missing."""
    with pytest.raises(RuntimeError):
        _run_ranks(2, lambda: failing_cls(oracle_cls(), fail_after=1), batch_size=2,
                   output_dir=tmp_path / "run", store=False, run_id="s")
    model = oracle_cls()
    result = evaluate(model, ["toy_eval"], batch_size=2, output_dir=tmp_path / "run", store=False,
                      run_id="s", progress=False)
    ids = [r["id"] for r in result.tasks["toy_eval"].predictions]
    assert ids == [f"toy-{i:03d}" for i in range(14)]
    assert 0 < model.answered < 14


def test_merge_refuses_missing_predictions(tmp_path):
    (tmp_path / "t.part-0.jsonl").write_text('{"id": "a", "prediction": "x"}\n')
    with pytest.raises(RuntimeError, match="1 predictions missing"):
        merge(tmp_path, "t", ["a", "b"])
    assert [r["id"] for r in merge(tmp_path, "t", ["a"])] == ["a"]
