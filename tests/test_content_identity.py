"""``harness run`` keys everything it reuses by content: new weights under the same folder reuse nothing."""

from __future__ import annotations

import shutil

import pytest

from harness.experiments.pipeline import RunConfig, base_model_name, run
from harness.results.store import ResultsStore

pytestmark = pytest.mark.slow


def _perturb_weights(folder):
    """Other weights of exactly the same names, shapes and file size."""
    from safetensors.torch import load_file, save_file

    weights = next(folder.glob("*.safetensors"))
    size = weights.stat().st_size
    tensors = load_file(weights)
    for name in sorted(tensors)[:4]:
        if tensors[name].is_floating_point():
            tensors[name] = tensors[name] * 0.5
    save_file(tensors, weights, metadata={"format": "pt"})
    assert weights.stat().st_size == size


def test_swapping_the_weights_of_a_model_folder_reuses_no_base_evaluation_pairs_or_reference(tmp_path,
                                                                                            tiny_model_dir):
    folder = shutil.copytree(tiny_model_dir, tmp_path / "my-model")
    ref_cache = tmp_path / "ref"

    def config():
        return RunConfig(method="dpo", model=str(folder), tasks=("synth_vqa",), train_limit=8, eval_limit=4,
                         store=str(tmp_path / "store.sqlite"),
                         train={"batch_size": 4, "max_steps": 1, "ref_cache": str(ref_cache)})

    first = run(config())
    name_before = base_model_name(str(folder), folder)
    _perturb_weights(folder)
    name_after = base_model_name(str(folder), folder)
    assert name_before != name_after and name_before.startswith("my-model@")
    assert str(tmp_path) not in name_after  # the name carries no machine path

    second = run(config())
    assert second.base_run_id != first.base_run_id  # the base was evaluated again
    assert second.pairs_dir != first.pairs_dir  # the pairs were built again
    assert len(list(ref_cache.glob("ref-*.pt"))) == 2  # the reference log-probs were computed again
    store = ResultsStore(tmp_path / "store.sqlite")
    bases = {r["run_id"]: r["model"] for r in store.runs() if r["config"].get("role") == "base"}
    assert bases == {first.base_run_id: name_before, second.base_run_id: name_after}
    assert [row["run"] for row in second.table] == ["base", "dpo (this run)"]  # never compared across weights
