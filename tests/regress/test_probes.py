"""Factuality probes on the synthetic suite: POPE-style probe sets and lesion-ablation consistency."""

import numpy as np

from harness.models.base import VisionLanguageModel
from harness.regress.probes import finding_question, lesion_ablation_consistency
from harness.tasks import get_task

LIMIT = 40


def test_synth_probe_asks_about_present_and_absent_lesion_kinds_in_balance():
    data = get_task("synth_probe").load("test")
    rows = data.select_columns(["question", "answer", "answer_type", "probe_setting", "probe_label",
                                "source_id"]).to_list()
    kinds = {}
    for case in get_task("synth_vqa").load("test", test_size=200).select_columns(["id", "lesion_kind"]).to_list():
        kinds[case["id"]] = set(case["lesion_kind"].split(","))
    assert {r["answer_type"] for r in rows} == {"closed"}
    for setting in ("random", "popular", "adversarial"):
        answers = [r["answer"] for r in rows if r["probe_setting"] == setting]
        assert answers.count("yes") == answers.count("no") > 20
    for row in rows:  # "yes" exactly when the film shows the kind asked about, and the question names that kind
        assert (row["probe_label"] in kinds[row["source_id"]]) == (row["answer"] == "yes")
        assert row["question"] == finding_question(row["probe_label"])
    assert "Is there consolidation?" in {r["question"] for r in rows}  # a mass noun takes no article
    again = get_task("synth_probe").load("test")["question"]
    assert again == [r["question"] for r in rows]  # the same probes every run


class _Blind(VisionLanguageModel):
    name = "blind"

    def generate(self, images, prompts, config=None):
        return ["yes"] * len(prompts)


class _SeesTheLesion(VisionLanguageModel):
    """Says yes exactly to the intact films it is given: any change to the pixels flips its answer."""

    name = "sees"

    def __init__(self, intact_images):
        self.intact = {np.asarray(image.convert("RGB")).tobytes() for image in intact_images}

    def generate(self, images, prompts, config=None):
        return ["yes" if np.asarray(image).tobytes() in self.intact else "no" for image in images]


def test_lesion_ablation_consistency_separates_image_use_from_blindness():
    blind = lesion_ablation_consistency(_Blind(), "synth_vqa", limit=LIMIT, batch_size=8)
    assert blind.n_lesion_dependent > 0 and blind.n_correct == blind.n_lesion_dependent
    assert blind.value == 0.0  # a model that ignores the image never changes its answer
    films = get_task("synth_vqa").load("test").select(range(LIMIT))["image"]
    sees = lesion_ablation_consistency(_SeesTheLesion(films), "synth_vqa", limit=LIMIT, batch_size=8)
    assert sees.value == 1.0 and sees.n_changed == sees.n_correct == blind.n_lesion_dependent
