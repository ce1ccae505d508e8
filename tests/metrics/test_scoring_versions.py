"""A scoring rule's version keys evaluations: a base evaluation scored by another rule is never reused.

``closed_accuracy`` is read by the closed-answer reader (version 2) and the CheXpert metrics by labeler
version 2; a stored base evaluation made under the earlier rules holds the earlier scores, so the evaluation
signature (which decides reuse) must differ between the two."""

from __future__ import annotations

import dataclasses

from harness.experiments.pipeline import RunConfig, _eval_signature, base_run_id_for
from harness.findings.labeler import LABELER_VERSION
from harness.metrics import get_metric
from harness.metrics.registry import scoring_versions


def test_changed_rules_carry_their_versions():
    assert get_metric("closed_accuracy").version == "2"
    assert get_metric("closed_accuracy_llava_med").version == "1"  # the legacy rule never changed
    for name in ("chexpert_f1_micro", "chexpert_f1_macro", "hallucination_rate"):
        assert get_metric(name).version == LABELER_VERSION


def test_scoring_versions_lists_only_rules_past_their_first_version():
    versions = scoring_versions(["closed_accuracy", "open_recall", "chexpert_f1_micro", "bleu_4"])
    assert versions == {"closed_accuracy": "2", "chexpert_f1_micro": LABELER_VERSION}


def test_the_evaluation_signature_changes_with_a_scoring_rule(monkeypatch):
    import harness.metrics.registry as registry

    config = RunConfig(tasks=("synth_vqa",), eval_limit=4)
    signature = _eval_signature(config)
    assert signature["scoring"] == {"closed_accuracy": "2"}
    now = base_run_id_for(config, "tiny@0123")

    # the same evaluation under the earlier rules (every metric at version 1): another signature, another run id
    current = registry.get_metric
    monkeypatch.setattr(registry, "get_metric", lambda name: dataclasses.replace(current(name), version="1"))
    assert "scoring" not in _eval_signature(config)
    assert base_run_id_for(config, "tiny@0123") != now
