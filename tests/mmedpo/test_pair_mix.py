"""The pairs' error-type mix is published next to the base's own, and denials reach the pairs in proportion
to the base's own denial rate (the denial floor), for MMedPO's text pairs and for the default text pairs.

The base is a fake (``DenyingVLM``) whose greedy reports deny the lesion on most lesion cases, as the
testbed's do, while its samples only ever get a lesion's size wrong: without the floor the judge would pick
size errors and the pairs would teach nothing about the main error.
"""

from __future__ import annotations

import pytest

from harness.curation.errortypes import DENIAL_TOLERANCE, admits_denial, classify, is_lesion_case
from harness.curation.factcheck import contradictions
from harness.curation.textpairs import default_text_pairs
from harness.methods import PairContext
from harness.tasks.synth import write_report
from mmedpo.curate import curate


def _cases(dataset):
    return {str(s["id"]): s for s in dataset}


def _expected_base(dataset, model):
    lesion = [s for s in dataset if is_lesion_case(s)]
    return len(lesion), sum(model.denies(s) for s in lesion)


def test_default_text_pairs_publish_the_mix_and_carry_the_bases_denials(synth_reports, denying_vlm):
    task, dataset = synth_reports
    model = denying_vlm(dataset, task)
    pairs = default_text_pairs(task, dataset, seed=0, model=model)
    manifest = pairs.manifest
    lesions, denied = _expected_base(dataset, model)
    assert lesions >= 5 and denied >= 3 and model.greedy_calls and model.sample_calls
    # the base's own distribution: its greedy report denies `denied` of the lesion cases, errs on no other
    base = manifest["error_mix"]["base"]
    assert base["lesion"] == {"denial": denied, "none": lesions - denied}
    assert base["n"] == {"lesion": lesions, "normal": len(dataset) - lesions}
    assert manifest["cases"] == {"lesion": lesions, "normal": len(dataset) - lesions}
    rule = manifest["denial_rule"]
    assert rule["base_denial_share"] == pytest.approx(1.0)  # every lesion-case error of the base is a denial
    # the samples alone (size errors) would put no denial in the pairs: the rule failed before the floor
    assert rule["before"]["pair_denials"] == 0 and rule["before"]["holds"] is False
    assert rule["holds"] and rule["pair_denial_share"] >= rule["base_denial_share"] - DENIAL_TOLERANCE
    assert rule["swapped"] == rule["before"]["missing"] > 0
    # the base's own denials are taken first: every one of them is in the pairs before any injected one
    sources = manifest["sources"]
    assert sources["denial-floor-greedy"] == denied and sources.get("denial-floor-injector", 0) == rule["swapped"] - denied
    cases = _cases(dataset)
    lesion_pairs = [p for p in pairs if p.extra["case"] == "lesion"]
    assert manifest["error_mix"]["pairs"]["lesion"]["denial"] == rule["pair_denials"]
    assert sum(classify(p.rejected, cases[p.id.split("-", 1)[1]]).primary == "denial" for p in lesion_pairs) \
        == rule["pair_denials"]
    for pair in pairs:  # every rejected text really contradicts its case, as recorded
        case = cases[pair.id.split("-", 1)[1]]
        assert contradictions(pair.rejected, case) and pair.extra["error"] == classify(pair.rejected, case).to_json()
        if pair.source.startswith("denial-floor"):
            # the base's own greedy denial where it made one ("The lungs are clear" for a lesion case), else a
            # verified injected denial (for a report, the same normal report)
            source = "denial-floor-greedy" if model.denies(case) else "denial-floor-injector"
            assert pair.source == source and pair.rejected == write_report([])
            assert pair.extra["denial_floor"]["replaced_error"]["primary"] == "wrong_size"
        elif pair.extra["case"] == "lesion":
            assert pair.source == "model-sample" and pair.extra["error"]["primary"] == "wrong_size"
        else:  # normal films: the samples equal the truth, so the verified injector invents a finding
            assert pair.source == "injector-fallback" and pair.extra["error"]["primary"] == "invented"
    assert manifest["behaviour"]["denial_floor"].startswith("project rule")


def test_default_text_pairs_injector_mode_needs_no_model_and_measures_no_base(synth_reports):
    task, dataset = synth_reports
    pairs = default_text_pairs(task, dataset, seed=0, mode="injector")
    assert pairs and {p.source for p in pairs} == {"rules-hallucination"}
    manifest = pairs.manifest
    assert manifest["error_mix"]["base"] is None and manifest["denial_rule"] is None
    assert manifest["behaviour"]["text"].startswith("offline-rules")
    assert sum(manifest["error_mix"]["pairs"]["all"].values()) == len(pairs)


def test_default_text_pairs_without_a_model_name_the_way_out(synth_reports):
    from harness.core.errors import HarnessError

    task, dataset = synth_reports
    with pytest.raises(HarnessError, match="--text-pairs injector"):
        default_text_pairs(task, dataset, seed=0)


@pytest.mark.parametrize("fixture", ["synth_reports", "synth_train"])
def test_mmedpo_manifest_publishes_the_mix_and_the_denial_rule_holds(fixture, request, denying_vlm, tmp_path):
    task, dataset = request.getfixturevalue(fixture)
    model = denying_vlm(dataset, task, deny_every=4)
    result = curate(PairContext(task=task, samples=dataset, model=model, output_dir=tmp_path, seed=0,
                                options={"num_samples": 2, "weighting": "release"}))
    manifest = result.manifest
    lesions, _ = _expected_base(dataset, model)
    cases = _cases(dataset)
    base_lesion = [classify(model.greedy(s), s).primary for s in dataset if is_lesion_case(s)]
    assert manifest["error_mix"]["base"]["lesion"].get("denial", 0) == base_lesion.count("denial") > 0
    rule = manifest["denial_rule"]
    assert rule["enforced"] and rule["holds"]
    if fixture == "synth_reports":  # the samples' size errors alone would fail the rule: the floor acted
        assert rule["before"]["holds"] is False and rule["swapped"] > 0
    assert rule["pair_denial_share"] >= rule["base_denial_share"] - DENIAL_TOLERANCE
    text = [p for p in result.pairs if p.kind == "text"]
    lesion_text = [p for p in text if p.extra["case"] == "lesion"]
    # the rule counts the lesion-case items a denial can answer (not "Where is the mass?" or a "no" question)
    eligible = [p for p in lesion_text if admits_denial(cases[p.id.rsplit("-", 1)[0]])]
    assert 0 < len(eligible) <= len(lesion_text)
    denials = [p for p in eligible if classify(p.rejected, cases[p.id.rsplit("-", 1)[0]]).primary == "denial"]
    assert len(denials) == rule["pair_denials"] and len(eligible) == rule["pairs"]
    for pair in text:  # rejected texts contradict their cases; a swapped one's weight is its own severity
        case = cases[pair.id.rsplit("-", 1)[0]]
        found = contradictions(pair.rejected, case)
        assert found
        if pair.source.startswith("mmedpo-denial-floor"):
            assert pair.extra["error"]["primary"] == "denial" and pair.extra["text"]["how"] in (
                "denial-floor-greedy", "denial-floor-injector")
            from harness.curation.factcheck import severity

            assert pair.weight == pytest.approx(severity(found))
    # the visual pairs: one per item, lesion and normal films counted apart
    assert manifest["cases"]["visual"] == {"lesion": lesions, "normal": len(dataset) - lesions}
    assert manifest["cases"]["text"]["lesion"] == len(lesion_text)
    assert manifest["behaviour"]["denial_floor"].startswith("project-rule (tolerance 0.05)")
    assert manifest["behaviour"]["text"] == "offline-ground-truth-judge"


def test_the_denial_floor_can_be_turned_off_and_then_the_rule_is_only_reported(synth_reports, denying_vlm, tmp_path):
    task, dataset = synth_reports
    model = denying_vlm(dataset, task)
    result = curate(PairContext(task=task, samples=dataset, model=model, output_dir=tmp_path, seed=0,
                                options={"num_samples": 2, "visual_pairs": False, "denial_floor": False}))
    rule = result.manifest["denial_rule"]
    assert rule["enforced"] is False and rule["holds"] is False and rule["swapped"] == 0
    assert not any(p.source.startswith("mmedpo-denial-floor") for p in result.pairs)
    assert result.manifest["behaviour"]["denial_floor"] == "off"


@pytest.mark.parametrize("fixture", ["synth_reports", "synth_train"])
def test_mmedpo_text_pairs_are_the_default_text_pairs(fixture, request, denying_vlm, tmp_path):
    # same samples, same judge, same fallback seeds, same floor: MMedPO vs DPO differs only in the visual
    # pairs and the weights
    task, dataset = request.getfixturevalue(fixture)
    model = denying_vlm(dataset, task)
    default = {p.id.split("-", 1)[1]: p for p in default_text_pairs(task, dataset, seed=3, model=model)}
    result = curate(PairContext(task=task, samples=dataset, model=model, output_dir=tmp_path, seed=3,
                                options={"visual_pairs": False}))
    mine = {p.id.rsplit("-", 1)[0]: p for p in result.pairs}
    assert set(mine) == set(default)
    assert all(mine[i].rejected == default[i].rejected and mine[i].chosen == default[i].chosen for i in mine)
    assert any(p.source == "injector-fallback" for p in default.values())  # the fallbacks agree too
