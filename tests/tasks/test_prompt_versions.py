"""A task's version (its prompts and scoring) keys what results are cached and resumed by, so answers asked
under other prompts are never reused; tasks still at their first version keep the keys they had."""

from __future__ import annotations

import dataclasses

import pytest
from task_layouts import vqa_rad_record, write_image, write_json

from harness.core.errors import HarnessError
from harness.evaluation import evaluate
from harness.models.base import VisionLanguageModel
from harness.tasks import get_task
from harness.tasks.identity import PATH_COLUMNS, rows_digest, split_digest, version_key
from harness.tasks.synth import SYNTH_VQA


class SaysNo(VisionLanguageModel):
    name = "says-no"

    def generate(self, images, prompts, config=None):
        return ["no" for _ in prompts]


@pytest.fixture
def vqa_rad_root(tmp_path):
    root = tmp_path / "vqa_rad"
    write_image(root / "images" / "synpic1.jpg")
    records = [vqa_rad_record(1, "synpic1.jpg", "Is this supratentorial or infratentorial?", "supratentorial"),
               vqa_rad_record(2, "synpic1.jpg", "Is there a mass?", "No")]
    write_json(root / "testset.json", records)
    write_json(root / "trainset.json", records)
    return tmp_path


def test_the_vqa_tasks_whose_prompts_changed_are_at_a_new_version():
    assert get_task("vqa_rad").version == "1.2" and get_task("slake").version == "1.2"
    assert SYNTH_VQA.version == "1"  # the synthetic suite only asks yes/no questions: same prompts, same version
    # the report tasks moved for another reason: labeler 2 reads their clinical metrics (harness.metrics.clinical)
    assert get_task("iu_xray").version == "1.1" and get_task("mimic_cxr").version == "1.1"


def test_the_version_enters_the_split_digest_that_caches_key_by(vqa_rad_root):
    task = get_task("vqa_rad")
    earlier = dataclasses.replace(task, version="1.1")
    now = split_digest(task, "test", vqa_rad_root)
    assert now != split_digest(earlier, "test", vqa_rad_root)
    assert now == split_digest(task, "test", vqa_rad_root)  # stable for one version


def test_tasks_at_their_first_version_keep_their_keys():
    assert version_key(SYNTH_VQA) is None and version_key(get_task("iu_xray")) == "1.1"
    small = dataclasses.replace(SYNTH_VQA, options={"test_size": 12})
    rows = small.load("test")
    digest = rows_digest(rows.select_columns([c for c in rows.column_names if c not in PATH_COLUMNS]).to_list())
    assert split_digest(small, "test") == digest  # the content digest alone, as before versions were keyed


def test_a_run_evaluated_under_another_version_is_not_resumed(vqa_rad_root, monkeypatch):
    evaluate(SaysNo(), ["vqa_rad"], data_dir=vqa_rad_root, run_id="v-old", store=False, progress=False)
    import harness.tasks.vqa_rad as vqa_rad

    monkeypatch.setattr(vqa_rad.TASK, "version", "9.9")
    with pytest.raises(HarnessError, match="version 1.2, not 9.9"):
        evaluate(SaysNo(), ["vqa_rad"], data_dir=vqa_rad_root, run_id="v-old", store=False, progress=False)
