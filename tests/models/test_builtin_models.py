"""The built-in models' training (harness.builtin_models): SFT data from the sft split, the testbed's
image-text mismatch recipe, registration, and the cached build (on a reduced testbed configuration)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.builtin_models import (
    VERSIONS,
    ensure_builtin,
    ensure_testbed,
    mismatched_text_sources,
    model_dir,
    sft_records,
)
from harness.builtin_models import (
    testbed_config as make_testbed,
)
from harness.errors import HarnessError
from harness.tasks.synth import load_cases

# a testbed architecture (64 px, 8 px patches) trained for a few steps only: builds in seconds
REDUCED = make_testbed(vision_hidden=32, text_hidden=32, heads=2, train_vqa=24, train_report=8, epochs=1.0,
                         batch_size=8)


def test_mismatch_sources_swap_the_given_share_never_to_the_case_itself():
    sources = mismatched_text_sources(4000, 0.25, seed=0)
    assert set(sources) == {"vqa", "report"}
    for source in sources.values():
        swapped = source != np.arange(4000)
        assert 0.22 < swapped.mean() < 0.28
    # the two tasks are swapped independently, and the draw is seeded
    assert not np.array_equal(sources["vqa"], sources["report"])
    assert np.array_equal(mismatched_text_sources(4000, 0.25, seed=0)["vqa"], sources["vqa"])
    assert (mismatched_text_sources(50, 0.0, seed=0)["report"] == np.arange(50)).all()


def test_sft_records_come_from_the_sft_split_and_mismatched_ones_show_another_case():
    config = make_testbed(train_vqa=60, train_report=40, mismatch_share=0.5)
    records = sft_records(config)
    assert len(records) == 100
    folder, cases = load_cases("sft", sft_size=60)
    assert all(r.image.startswith(str(folder)) for r in records)
    reports = records[60:]
    own = [r.response == cases[i].report for i, r in enumerate(reports)]
    sources = mismatched_text_sources(60, 0.5, config.seed)["report"][:40]
    assert [r.response for r in reports] == [cases[s].report for s in sources]
    swapped = sources != np.arange(40)
    assert 0 < swapped.sum() < 40
    # a swapped record's report is another case's: it differs from its own whenever the findings differ
    assert any(not own[i] for i in np.flatnonzero(swapped))
    clean = sft_records(make_testbed(train_vqa=60, train_report=40, mismatch_share=0.0))
    assert [r.response for r in clean[60:]] == [c.report for c in cases[:40]]
    assert [r.response for r in clean[:60]] == [c.answer for c in cases]


def test_bad_mismatch_share_is_a_one_line_error():
    with pytest.raises(HarnessError, match="mismatch_share"):
        sft_records(make_testbed(mismatch_share=1.0))


def test_both_names_are_registered_lazily():
    from harness.models import MODELS

    assert {"tiny", "testbed"} <= set(MODELS.names())
    with pytest.raises(HarnessError, match="no built-in model 'tiyn'"):
        ensure_builtin("tiyn")


def test_reduced_testbed_builds_once_and_sees_64_image_tokens(tmp_path, monkeypatch):
    from PIL import Image

    import harness.training.sft as sft
    from harness.io import read_json

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    folder = ensure_testbed(config=REDUCED)
    assert folder == model_dir("testbed") and folder.name == f"testbed-{VERSIONS['testbed']}"
    stamp = read_json(folder / "testbed.json")
    assert stamp["config"] == REDUCED.key() and stamp["records"] == 32

    def retrain(*args, **kwargs):
        raise AssertionError("a cached model was retrained")

    monkeypatch.setattr(sft, "train_sft", retrain)
    assert ensure_testbed(config=REDUCED) == folder
    with pytest.raises(AssertionError, match="retrained"):  # another configuration is another model
        ensure_testbed(config=make_testbed(**{**REDUCED.__dict__, "mismatch_share": 0.0}))
    from harness.models.hf import load_hf_model

    vlm = load_hf_model(folder, device="cpu")
    inputs = vlm.processor_inputs([Image.new("RGB", (64, 64))], [vlm.format_prompt("Is there a mass?")], "left")
    assert int((inputs["input_ids"] == vlm.model.config.image_token_id).sum()) == 64
