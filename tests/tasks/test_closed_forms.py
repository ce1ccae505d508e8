"""Closed questions are prompted by their form: yes/no questions keep "Answer yes or no.", choice questions
("A or B?") are asked to pick an option; the form is read from the question only."""

from __future__ import annotations

import pytest
from task_layouts import slake_record, vqa_rad_record, write_image, write_json

from harness.tasks import get_task
from harness.tasks.base import CHOICE_PROMPT, CLOSED_PROMPT, OPEN_PROMPT, closed_form
from harness.tasks.synth import KINDS, SIDES, SYNTH_VQA, _article


@pytest.mark.parametrize(("question", "form"), [
    # real VQA-RAD / SLAKE closed questions
    ("Is there a pneumothorax?", "yes/no"),
    ("Does the picture contain liver?", "yes/no"),
    ("Which organ is abnormal, heart or lung?", "choice"),
    ("Which is bigger in this image,lung or heart?", "choice"),  # SLAKE's missing space
    ("Which is the biggest in this image, lung, heart or liver?", "choice"),
    ("Is this supratentorial or infratentorial?", "choice"),
    ("Is this an MRI or a CT scan?", "choice"),
    ("Is the lesion on the left or right side of the brain?", "choice"),
    ("Is this a T1 weighted, T2 weighted, or FLAIR image?", "choice"),
    ("Is this a pneumonia vs. pleural effusion?", "choice"),
    ("Was a CT or MRI used to take the above image?", "choice"),
    # existence questions read "or" as "either"...
    ("Is/Are there epidural or subdural hematoma?", "yes/no"),
    ("Any evidence of epidural or subdural hematoma?", "yes/no"),
    ("Can a diagnosis or impression be made in this plane?", "yes/no"),
    ("Does the liver show an enhancing mass or lesion?", "yes/no"),
    ("Is there no evidence of any hypo- or hyperattenuations located in the liver?", "yes/no"),
    # ...unless the alternatives exclude each other
    ("Is there hypoinflation or hyperinflation of the lung", "choice"),
    ("Are there multiple or just 1 metastatic focus?", "choice"),
    ("Does this CT have contrast or no contrast?", "choice"),
    ("Is there appendix normal or abnormal in appearance?", "choice"),
    ("Does this image use contrast or not?", "yes/no"),  # "or not" asks whether
    ("Where is/are the lesion located?", "open"),  # annotated closed, but no alternatives to pick
    ("In which lobe are the lesions?", "open"),
    ("图片中包含肺吗?", "yes/no"),  # SLAKE's Chinese questions keep the yes/no instruction
])
def test_closed_form_reads_the_question(question, form):
    assert closed_form(question) == form


def _slake_folder(tmp_path):
    root = tmp_path / "slake"
    write_image(root / "imgs" / "xmlab1" / "source.jpg")
    test = [
        slake_record(11, 1, "Which organ is abnormal, heart or lung?", "Heart"),
        slake_record(12, 1, "Does the picture contain liver?", "Yes"),
        slake_record(13, 1, "Which is bigger in this image,liver or spleen?", "Liver"),
        slake_record(14, 1, "What modality is used?", "CT", answer_type="OPEN"),
    ]
    write_json(root / "test.json", test)
    write_json(root / "train.json", test[:1])
    write_json(root / "validate.json", test[:1])
    return tmp_path


def _vqa_rad_folder(tmp_path):
    root = tmp_path / "vqa_rad"
    write_image(root / "images" / "synpic1.jpg")
    test = [
        vqa_rad_record(1, "synpic1.jpg", "Is this supratentorial or infratentorial?", "supratentorial", "CLOSED "),
        vqa_rad_record(2, "synpic1.jpg", "Is there evidence of an aortic aneurysm?", "No"),
        vqa_rad_record(3, "synpic1.jpg", "Are there epidural or subdural bleeds as well?", "No"),
    ]
    write_json(root / "testset.json", test)
    write_json(root / "trainset.json", test)
    return tmp_path


@pytest.mark.parametrize(("task", "folder", "choice_ids", "yes_no_ids"), [
    ("slake", _slake_folder, {"11", "13"}, {"12"}),
    ("vqa_rad", _vqa_rad_folder, {"1"}, {"2", "3"}),
])
def test_choice_questions_are_not_told_to_answer_yes_or_no(tmp_path, task, folder, choice_ids, yes_no_ids):
    task_obj = get_task(task)
    rows = {row["id"]: row for row in task_obj.load("test", data_dir=folder(tmp_path)).to_list()}
    for rid in choice_ids:
        prompt = task_obj.prompt(rows[rid])
        assert "yes or no" not in prompt.lower()
        assert prompt == CHOICE_PROMPT.format(question=rows[rid]["question"])
    for rid in yes_no_ids:  # exactly the prompt every earlier version gave
        assert task_obj.prompt(rows[rid]) == rows[rid]["question"] + "\nAnswer yes or no."
    open_rows = [r for r in rows.values() if r["answer_type"] == "open"]
    assert all(task_obj.prompt(r) == OPEN_PROMPT.format(question=r["question"]) for r in open_rows)


def test_the_synthetic_suite_is_asked_exactly_as_before():
    """Every closed question the generator can ask (synth.py builds them from KINDS and SIDES) keeps the yes/no
    prompt, byte for byte, so the built-in models, their training data and cached runs are unchanged."""
    questions = ["Is there an abnormality in the lungs?"]
    for kind in KINDS:
        questions.append(f"Is there {_article(kind)} {kind}?")
        questions += [f"Is there {_article(kind)} {kind} in the {side} lung?" for side in SIDES]
    assert CLOSED_PROMPT == "{question}\nAnswer yes or no."
    for question in questions:
        assert SYNTH_VQA.prompt({"answer_type": "closed", "question": question}) == f"{question}\nAnswer yes or no."
    generated = [row for row in SYNTH_VQA.load("test", test_size=40).to_list() if row["answer_type"] == "closed"]
    assert generated and {row["question"] for row in generated} <= set(questions)


def _forms_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "closed_forms.py"
    spec = importlib.util.spec_from_file_location("closed_forms", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_forms_script_reads_a_slake_file(tmp_path, capsys):
    import json

    root = _slake_folder(tmp_path) / "slake"
    records = json.loads((root / "test.json").read_text()) + [
        slake_record(15, 1, "Is this a CT or an MRI?", "Yes"),  # a yes/no answer to a choice question
        slake_record(16, 1, "图片中包含肺吗?", "是", lang="zh"),  # not English: left out
    ]
    write_json(root / "test.json", records)
    assert _forms_script().main([str(root / "test.json"), "--format", "json"]) == 0
    table = json.loads(capsys.readouterr().out)["test.json"]
    assert table["closed"] == 4 and table["forms"] == {"yes/no": 1, "choice": 3, "open": 0}
    assert table["yes_no_answer_prompted_otherwise"] == 1 and table["other_answer_prompted_yes_no"] == 0
    assert [d["question"] for d in table["disagreements"]] == ["Is this a CT or an MRI?"]


def test_the_forms_on_vqa_rad_test_are_those_docs_state(shared_data, capsys):
    import json

    assert _forms_script().main([str(shared_data / "vqa_rad" / "testset.json"), "--format", "json"]) == 0
    table = json.loads(capsys.readouterr().out)["testset.json"]
    # docs/tasks.md: 272 closed = 250 yes/no + 21 choice + 1 open; the one disagreement is VQA-RAD's
    # "What do the two small hyperintensities indicate?" -> "Yes"
    assert (table["closed"], table["forms"]) == (272, {"yes/no": 250, "choice": 21, "open": 1})
    assert table["other_answer_prompted_yes_no"] == 0
    assert [d["answer"] for d in table["disagreements"]] == ["Yes"]


def test_the_forms_script_names_a_bad_file(tmp_path, capsys):
    bad = tmp_path / "test.json"
    bad.write_text('[{"question": "Is it?", "answer": "yes", "answer_type": "MAYBE"}]')
    assert _forms_script().main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert "test.json" in err and "answer_type" in err and err.count("\n") == 1
