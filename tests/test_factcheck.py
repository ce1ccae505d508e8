"""The fact check reads what a candidate contradicts; its severities give informative pair weights."""

from __future__ import annotations

import statistics

import datasets
import numpy as np
from PIL import Image

from harness.curation.factcheck import SEVERITY, URGENCY, Contradiction, contradictions, severity
from harness.curation.hallucinate import make_hallucination
from harness.curation.textpairs import default_text_pairs
from harness.tasks.synth import generate_case
from mmedpo.relevance import normalize


def _synth_rows(count: int):
    vqa, report = [], []
    for index in range(count):
        _, _, case = generate_case("train", index, seed=0, image_size=32)
        lesions = case.lesions
        cols = {"lesion_kind": ",".join(x.kind for x in lesions) or "none",
                "lesion_location": ",".join(x.location for x in lesions) or "none",
                "lesion_size": ",".join(x.size for x in lesions) or "none"}
        vqa.append({"id": case.id, "question": case.question, "answer": case.answer,
                    "answer_type": case.answer_type, **cols})
        report.append({"id": case.id, "question": "Describe.", "answer": case.report, "answer_type": "report", **cols})
    return vqa, report


def test_the_severity_table_is_documented_in_range_and_ranks_misses_first():
    assert all(0 < v <= 1 for v in SEVERITY.values()) and all(0 < v <= 1 for v in URGENCY.values())
    assert SEVERITY["denied_finding"] > SEVERITY["invented_finding"] > SEVERITY["laterality"] > SEVERITY["size"]
    assert severity([]) == 0.0
    two = [Contradiction("laterality", "", 0.5), Contradiction("size", "", 0.4)]
    assert severity(two) == 0.5 + 0.15 * 0.4 and severity(two[:1]) == 0.5


def test_closed_flips_score_by_what_they_get_wrong():
    def row(answer, question, kind="none", location="none", size="none"):
        return {"answer": answer, "answer_type": "closed", "question": question, "lesion_kind": kind,
                "lesion_location": location, "lesion_size": size}

    denied = contradictions("no", row("yes", "Is there a pneumothorax?", "pneumothorax", "left upper", "large"))
    invented = contradictions("yes", row("no", "Is there a nodule?"))
    wrong_side = contradictions("yes", row("no", "Is there a mass in the left lung?", "mass", "right upper", "small"))
    assert [c.kind for c in denied + invented + wrong_side] == ["denied_finding", "invented_finding", "laterality"]
    assert len({severity(denied), severity(invented), severity(wrong_side)}) == 3
    assert contradictions("yes", row("yes", "Is there a nodule?")) == []


def test_pair_weights_on_the_synthetic_tasks_carry_information():
    vqa, report = _synth_rows(120)
    for rows in (vqa, report):
        made = [make_hallucination(r, seed=i) for i, r in enumerate(rows)]
        weights = normalize([m.severity for m in made if m is not None], "paper")
        q1, _, q3 = statistics.quantiles(weights, n=4)
        assert q3 - q1 > 0.05
        assert sum(m is None for m in made) <= len(rows) // 20


class _Task:
    name = "toy"

    def prompt(self, sample):
        return sample["question"]


def test_default_text_pairs_skip_and_count_items_without_a_verified_hallucination(tmp_path):
    path = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(path)
    samples = datasets.Dataset.from_dict({
        "id": ["a", "b", "c"], "image": [str(path)] * 3,
        "question": ["Is there a mass?", "What is not pictured?", "Where is the effusion?"],
        "answer": ["no", "The extremities", "left lower lung"], "answer_type": ["closed", "open", "open"],
    }, features=datasets.Features({"id": datasets.Value("string"), "image": datasets.Image(),
                                   "question": datasets.Value("string"), "answer": datasets.Value("string"),
                                   "answer_type": datasets.Value("string")}))
    pairs = default_text_pairs(_Task(), samples, seed=0, mode="injector")
    assert [p.id for p in pairs] == ["toy-a", "toy-c"] and pairs.skipped == 1 and pairs.skipped_ids == ["b"]
    assert pairs[0].rejected == "yes" and all(p.extra["contradictions"] for p in pairs)
    assert all(contradictions(p.rejected, {"answer": p.chosen, "question": p.prompt, "answer_type": t})
               for p, t in zip(pairs, ("closed", "open")))
