"""The built-in models' training (harness.experiments.builtin_models): SFT data from the sft split, the testbed's
two-stage recipe (a lesion-enriched reading stage, then a prior stage whose reports deny a share of the
lesions), the image-text mismatch option, registration, and the cached build (on a reduced testbed)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.core.errors import HarnessError
from harness.experiments.builtin_models import (
    VERSIONS,
    denied_reports,
    ensure_builtin,
    ensure_testbed,
    mismatched_text_sources,
    model_dir,
    prior_records,
    sft_records,
)
from harness.experiments.builtin_models import (
    testbed_config as make_testbed,
)
from harness.tasks.synth import load_cases

# a testbed architecture (64 px, 16 px patches, both stages) trained for a few steps only: builds in seconds
REDUCED = make_testbed(vision_hidden=32, text_hidden=32, heads=2, train_vqa=24, train_report=8, steps=3,
                       prior_steps=2, batch_size=8)


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
    config = make_testbed(train_vqa=60, train_report=40, mismatch_share=0.5, lesion_share=None, prior_steps=0)
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
    clean = sft_records(make_testbed(train_vqa=60, train_report=40, mismatch_share=0.0, lesion_share=None,
                                     prior_steps=0))
    assert [r.response for r in clean[60:]] == [c.report for c in cases[:40]]
    assert [r.response for r in clean[:60]] == [c.answer for c in cases]


def test_bad_mismatch_share_is_a_one_line_error():
    with pytest.raises(HarnessError, match="mismatch_share"):
        sft_records(make_testbed(mismatch_share=1.0))
    with pytest.raises(HarnessError, match="lesion_share"):
        sft_records(make_testbed(lesion_share=1.5))
    with pytest.raises(HarnessError, match="deny_share"):
        prior_records(make_testbed(deny_share=-0.1))


def test_reading_stage_is_lesion_enriched_with_true_text():
    from harness.findings.synthetic import read_report

    config = make_testbed(train_vqa=200, train_report=200)  # lesion_share 0.8
    records = sft_records(config)
    reports = records[200:]
    with_lesion = [bool(read_report(r.response).asserted) for r in reports]
    assert sum(with_lesion) == 160  # exactly lesion_share of the cases, every report the case's own
    folder, cases = load_cases("sft", sft_size=1000)  # 500s of cases holding 160 at a 30% lesion-rate floor
    by_image = {str(folder / c.image): c for c in cases}
    assert all(by_image[r.image].report == r.response for r in reports)
    assert all(by_image[r.image].answer == r.response for r in records[:200])


def test_prior_stage_denies_a_share_of_lesion_reports_and_keeps_vqa_true():
    config = make_testbed(train_vqa=300, train_report=300, deny_share=0.5)
    records = prior_records(config)
    folder, cases = load_cases("sft", sft_size=1000)
    stage = cases[300:600]  # the natural mix after the reading stage's cases
    assert [r.image for r in records[:300]] == [str(folder / c.image) for c in stage]
    assert [r.response for r in records[:300]] == [c.answer for c in stage]
    reports = records[300:]
    normal_text = next(c.report for c in stage if not c.lesions)
    lesion = [i for i, c in enumerate(stage) if c.lesions]
    denied = [i for i in lesion if reports[i].response == normal_text]
    assert 0.4 < len(denied) / len(lesion) < 0.6
    assert all(reports[i].response == c.report for i, c in enumerate(stage) if not c.lesions)
    assert all(reports[i].response == stage[i].report for i in lesion if i not in denied)
    flags = denied_reports(stage, 0.5, config.seed, config.deny_spread)
    assert sorted(np.flatnonzero(flags)) == denied
    assert not denied_reports(stage, 0.0, config.seed).any()


def test_both_names_are_registered_lazily():
    from harness.models import MODELS

    assert {"tiny", "testbed"} <= set(MODELS.names())
    with pytest.raises(HarnessError, match="no built-in model 'tiyn'"):
        ensure_builtin("tiyn")


def test_reduced_testbed_builds_once_in_two_stages_and_sees_16_image_tokens(tmp_path, monkeypatch):
    from PIL import Image

    import harness.experiments.sft as sft
    from harness.core.io import read_json

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    folder = ensure_testbed(config=REDUCED)
    assert folder == model_dir("testbed") and folder.name == f"testbed-{VERSIONS['testbed']}"
    stamp = read_json(folder / "testbed.json")
    assert stamp["config"] == REDUCED.key() and stamp["records"] == 32 and stamp["prior_records"] == 32

    def retrain(*args, **kwargs):
        raise AssertionError("a cached model was retrained")

    monkeypatch.setattr(sft, "train_sft", retrain)
    assert ensure_testbed(config=REDUCED) == folder
    with pytest.raises(AssertionError, match="retrained"):  # another configuration is another model
        ensure_testbed(config=make_testbed(**{**REDUCED.__dict__, "deny_share": 0.3}))
    from harness.models.hf import load_hf_model

    vlm = load_hf_model(folder, device="cpu")
    inputs = vlm.processor_inputs([Image.new("RGB", (64, 64))], [vlm.format_prompt("Is there a mass?")], "left")
    assert int((inputs["input_ids"] == vlm.model.config.image_token_id).sum()) == 16


def test_small_lesions_are_denied_more_often_and_the_share_holds():
    from harness.tasks.synth import Case, Lesion

    rng = np.random.default_rng(3)
    sides = [int(s) for s in rng.integers(2, 20, size=3000)]
    cases = [Case(id=str(i), image="", mask="", lesions=[Lesion("mass", "right", "upper", "small", [0, 0, s, s])])
             for i, s in enumerate(sides)] + [Case(id="n", image="", mask="")] * 1000
    denied = denied_reports(cases, 0.5, seed=0, spread=0.8)
    assert not denied[3000:].any()  # a normal case's report is already the normal one
    area = np.array(sides) ** 2
    small, large = denied[:3000][area <= np.quantile(area, 0.2)], denied[:3000][area >= np.quantile(area, 0.8)]
    assert small.mean() > 0.75 and large.mean() < 0.25  # about 0.9 - 0.8 x rank
    assert 0.46 < denied[:3000].mean() < 0.54
    flat = denied_reports(cases, 0.5, seed=0, spread=0.0)
    assert abs(flat[:3000][area <= np.quantile(area, 0.2)].mean() - 0.5) < 0.08
