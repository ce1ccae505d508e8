import random

import numpy as np

from harness.core.provenance import git_commit, package_versions, provenance, set_seed


def test_versions_and_commit(tmp_path):
    versions = package_versions()
    assert {"torch", "transformers", "numpy"} <= set(versions)
    assert git_commit(tmp_path) is None  # not a checkout
    record = provenance(seed=5)
    assert record["seed"] == 5 and record["versions"] == versions and record["harness_version"]


def test_set_seed_repeats_draws():
    import torch

    set_seed(11)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_seed(11)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
